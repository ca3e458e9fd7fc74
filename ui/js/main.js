// main.js: the Agenda web client — session, navigation, messages and the
// live-update wiring.  The views live in calendar.js (which calendar:
// calendars.js), invitations.js and groups.js; they share `app` (state and
// helpers) defined here.

import * as api from './api.js';
import {$, h, clear} from './dom.js';
import {Live, kindOf} from './live.js';
import {CalendarView} from './calendar.js';
import {CalendarPicker} from './calendars.js';
import {EventDialog} from './event-dialog.js';
import {InvitationsView} from './invitations.js';
import {GroupsView} from './groups.js';

const VIEWS = ['calendar', 'invitations', 'groups'];

const app = {
    user: null,                 // the logged-in account (GET /me)
    view: null,

    // An API (or any) error, shown with the server's message until
    // dismissed or replaced.  where: a container for messages of a dialog.
    error(err, where = $('messages')) {
        const text = err instanceof api.ApiError ? err.describe()
            : String(err && err.message ? err.message : err);
        showMessage(where, 'error', text);
        if (!(err instanceof api.ApiError)) {
            console.error(err);
        }
    },

    info(text, where = $('messages')) {
        showMessage(where, 'info', text);
    },

    clearMessages(where = $('messages')) {
        clear(where);
    },

    // Runs fn; any error is shown.  Returns fn's result or undefined.
    async guard(fn, where) {
        try {
            return await fn();
        } catch (e) {
            app.error(e, where);
            return undefined;
        }
    },
};

function showMessage(where, kind, text) {
    const msg = h('div', {class: `message ${kind}`,
        role: kind === 'error' ? 'alert' : 'status'},
    h('span', {}, text),
    h('button', {type: 'button', class: 'dismiss',
        'aria-label': 'Dismiss message',
        onclick: () => msg.remove()}, '×'));
    // One message of each kind at a time: the newest says what matters.
    where.querySelectorAll(`.message.${kind}`).forEach((m) => m.remove());
    where.append(msg);
}

// ---- views ----------------------------------------------------------------

app.picker = new CalendarPicker(app, () => showCalendar());
app.dialog = new EventDialog(app);
app.calendar = new CalendarView(app);
app.invitations = new InvitationsView(app);
app.groups = new GroupsView(app);

function show(view) {
    $('loading').hidden = true;
    $('view-auth').hidden = view !== 'auth';
    for (const v of VIEWS) {
        $(`view-${v}`).hidden = v !== view;
    }
    document.querySelectorAll('#nav a').forEach((a) => {
        if (a.dataset.view === view) {
            a.setAttribute('aria-current', 'page');
        } else {
            a.removeAttribute('aria-current');
        }
    });
    const changed = app.view !== view;
    app.view = view;
    if (changed && view !== 'auth') {
        const title = document.querySelector(`#view-${view} h2`);
        if (title) {
            title.focus();
        }
    }
}

function route() {
    if (!app.user) {
        show('auth');
        return;
    }
    const m = /^#\/(\w+)/.exec(location.hash);
    const view = m && VIEWS.includes(m[1]) ? m[1] : 'calendar';
    show(view);
    document.title = `Agenda — ${view[0].toUpperCase()}${view.slice(1)}`;
}

// The picker chose another calendar: follow its changes (sync token, then
// its group's channel), then load it.
async function showCalendar() {
    const cur = app.picker.current();
    app.calendar.controls();
    await app.guard(() => live.watchGroup(cur.group ? cur.group.id : null));
    await app.guard(() => app.calendar.load());
}

// Everything the user sees, from the server.
async function reloadAll() {
    await Promise.all([
        app.guard(() => app.calendar.load()),
        app.guard(() => app.invitations.load()),
        app.guard(() => app.groups.load()),
    ]);
}

// What a change touches, refreshed (a notification or a resync).
let pending = new Set();
let pendingTimer = null;

function refresh(kinds) {
    if (kinds === null) {
        kinds = new Set(['events', 'groups', 'account']);
    }
    kinds.forEach((k) => pending.add(k));
    // Bursts (an event with many participants) become one reload.
    clearTimeout(pendingTimer);
    pendingTimer = setTimeout(async () => {
        const k = pending;
        pending = new Set();
        if (k.has('events')) {
            await app.guard(() => app.calendar.load());
            await app.guard(() => app.invitations.load());
            app.dialog.remoteChange();
        }
        if (k.has('groups')) {
            await app.guard(() => app.groups.load());
        }
        if (k.has('account')) {
            await app.guard(loadMe);
        }
        // Move the sync tokens past what was just loaded.
        await app.guard(() => live.catchUp());
    }, 150);
}

const live = new Live({
    onMessage(msg) {
        refresh(new Set([kindOf(msg.type)]));
    },
    onResync(kinds) {
        refresh(kinds);
    },
    onStatus(text, connected, channels) {
        const el = $('live-status');
        el.textContent = text;
        el.classList.toggle('on', connected);
        el.dataset.channels = channels.join(' ');
    },
});

// ---- session --------------------------------------------------------------

async function loadMe() {
    const r = await api.request('GET', '/me');
    app.user = r.body.user || r.body;
    $('whoami').textContent =
        `${app.user.display_name || app.user.username} (${app.user.username})`;
}

async function enter() {
    await loadMe();
    app.picker.reset();
    $('nav').hidden = false;
    $('session').hidden = false;
    route();
    // Sync tokens first, then the full load: nothing is missed between.
    live.start(app.user.username);
    await app.guard(() => live.baseline());
    await reloadAll();
}

function leave(message) {
    live.stop();
    app.dialog.close();
    app.user = null;
    api.clearSession();
    $('nav').hidden = true;
    $('session').hidden = true;
    $('whoami').textContent = '';
    app.calendar.reset();
    app.picker.reset();
    app.invitations.reset();
    app.groups.reset();
    app.clearMessages();
    if (message) {
        app.info(message);
    }
    route();
    $('login-username').focus();
}

api.onUnauthorized((err) => {
    if (app.user) {
        leave(`Your session ended: ${err.describe()}. Please log in again.`);
    }
});

function formValues(form) {
    return Object.fromEntries(new FormData(form).entries());
}

function busy(form, on) {
    form.querySelectorAll('button, input').forEach((el) => {
        el.disabled = on;
    });
    form.setAttribute('aria-busy', on ? 'true' : 'false');
}

$('login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const v = formValues(form);
    app.clearMessages();
    busy(form, true);
    try {
        await api.login(v.username.trim(), v.password);
        form.reset();
        await enter();
    } catch (err) {
        app.error(err);
    } finally {
        busy(form, false);
    }
});

$('register-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = e.currentTarget;
    const v = formValues(form);
    app.clearMessages();
    busy(form, true);
    try {
        await api.register({username: v.username.trim(),
            password: v.password, display_name: v.display_name.trim(),
            email: v.email.trim()});
        await api.login(v.username.trim(), v.password);
        form.reset();
        await enter();
        app.info('Welcome! Your account is ready.');
    } catch (err) {
        app.error(err);
    } finally {
        busy(form, false);
    }
});

$('logout').addEventListener('click', () => leave('You are logged out.'));

window.addEventListener('hashchange', route);

// A tab that still holds a valid token continues where it was.
(async function boot() {
    if (api.loadSession()) {
        try {
            await enter();
            return;
        } catch (err) {
            api.clearSession();
            app.error(err);
        }
    }
    route();
})();
