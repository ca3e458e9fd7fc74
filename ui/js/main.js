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
        if (api.isStale(err)) {
            return;     // an answer for a session that is over: no one's
        }
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
    if (!app.user) {
        return;
    }
    const gen = api.currentGeneration();
    const cur = app.picker.current();
    app.calendar.controls();
    await app.guard(() => live.watchGroup(cur.group ? cur.group.id : null));
    if (api.isCurrent(gen)) {
        await sync(() => app.calendar.load());
    }
}

// One load of what the user sees (fn).  A failure is shown, and makes the
// sync tokens untrustworthy — they may be past a change this page never
// got — so the next reload or resync loads everything (live.js).
async function sync(fn) {
    try {
        await fn();
    } catch (e) {
        app.error(e);
        if (!api.isStale(e)) {
            live.invalidate();
        }
    }
}

// Everything the user sees, from the server.
async function reloadAll() {
    await Promise.all([
        sync(() => app.calendar.load()),
        sync(() => app.invitations.load()),
        sync(() => app.groups.load()),
    ]);
}

// What a change touches, refreshed (a notification or a resync).
const EVERYTHING = ['events', 'groups', 'account'];
let pending = new Set();
let pendingTimer = null;

function refresh(kinds) {
    kinds.forEach((k) => pending.add(k));
    // Bursts (an event with many participants) become one reload.
    clearTimeout(pendingTimer);
    pendingTimer = setTimeout(() => {
        pendingTimer = null;
        const k = pending;
        pending = new Set();
        reload(k, api.currentGeneration());
    }, 150);
}

// Reloads the kinds named, and whatever else /changes says changed.
// The sync tokens move first: what is loaded after them covers all they
// passed, and a change committed during the loads lies after them, so it
// is told again (a notification, or /changes after a reconnect).  Moved
// after the loads, they would skip such a change for good — or one the
// loads failed to get (nginx restarting under them).
async function reload(kinds, gen) {
    try {
        const changed = await live.catchUp();
        if (changed === null) {     // tokens too old, or invalidated
            EVERYTHING.forEach((x) => kinds.add(x));
            await live.baseline();
        } else {
            changed.forEach((x) => kinds.add(x));
        }
    } catch (e) {
        if (!api.isCurrent(gen)) {
            return;
        }
        app.error(e);
        live.invalidate();          // perhaps moved in part: start over
    }
    const steps = [];
    if (kinds.has('events')) {
        steps.push(() => app.calendar.load(),
            () => app.invitations.load(), () => app.dialog.remoteChange());
    }
    if (kinds.has('groups')) {
        steps.push(() => app.groups.load());
    }
    if (kinds.has('account')) {
        steps.push(loadMe);
    }
    // Step by step, and no further once the session is over (a logout
    // during a step): the next step would ask for nobody.
    for (const step of steps) {
        if (!api.isCurrent(gen)) {
            return;
        }
        await sync(step);
    }
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

// Shows the page of the session just begun (api.login, or a token kept
// in the tab), then loads it.  Resolves once the page is shown, without
// waiting for the load: the login form is usable again at once (it is
// hidden, but a logout during the first load brings it back).
async function enter() {
    const gen = api.currentGeneration();
    await loadMe();
    app.picker.reset();
    $('nav').hidden = false;
    $('session').hidden = false;
    route();
    live.start(app.user.username);
    loadEverything(gen);
    // The event this user was editing when their last session ended
    // (leave()), back in its dialog; anyone else's login drops it.
    app.dialog.resume(app.user.username);
}

async function loadEverything(gen) {
    // Sync tokens first, then the full load: nothing is missed between.
    await app.guard(() => live.baseline());
    if (api.isCurrent(gen)) {
        await reloadAll();
    }
}

// keep: the session ended by itself (401), not by the user's choice: an
// event they were editing is kept for their next login (event-dialog.js).
function leave(message, keep = false) {
    let kept = false;
    if (keep && app.user) {
        kept = app.dialog.keepDraft(app.user.username);
    } else {
        app.dialog.dropDraft();
    }
    // The session ends before the page is cleared: its sockets closed,
    // its requests in flight aborted and their answers dropped (api.js),
    // its pending reload forgotten — nothing of it can come back after.
    live.stop();
    api.clearSession();
    clearTimeout(pendingTimer);
    pendingTimer = null;
    pending = new Set();
    app.user = null;
    app.dialog.reset();
    $('nav').hidden = true;
    $('session').hidden = true;
    $('whoami').textContent = '';
    app.picker.reset();
    app.calendar.reset();
    app.invitations.reset();
    app.groups.reset();
    app.clearMessages();
    if (message) {
        app.info(kept ? `${message} The event you were editing comes ` +
            'back when you do.' : message);
    }
    route();
    $('login-username').focus();
}

api.onUnauthorized((err) => {
    if (app.user) {
        leave(`Your session ended: ${err.describe()}. Please log in again.`,
            true);
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

// Views are "#/<name>"; another fragment (the skip link's "#main") is a
// place on the page, not a view to leave for the calendar.
window.addEventListener('hashchange', () => {
    if (location.hash.startsWith('#/') || location.hash === '') {
        route();
    }
});

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
