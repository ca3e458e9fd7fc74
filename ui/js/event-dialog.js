// event-dialog.js: create, edit, delete and answer one event.
//
// Editing is optimistic concurrency: the dialog reads the event (GET) and
// keeps its ETag; saving sends PATCH with If-Match.  When someone changed
// the event in between the API answers 412 version_mismatch: the dialog
// says so, keeps the user's edits, and offers to load the latest version.
// Double-booking is reported (policy "allow": saved, with a warning) or
// refused (policy "reject": 409 double_booked with the conflicts listed).
//
// Drafts.  The access token lasts 15 minutes and cannot be refreshed, so a
// session can end (401) while the user is typing, typically at Save.
// What they typed is then kept as a draft — in memory only, never in
// storage: it may be private — and given back only if the same user logs
// in again in this tab (main.js); anyone else's login drops it unseen.

import * as api from './api.js';
import {$, h, clear} from './dom.js';
import * as t from './time.js';

const RESPONSES = [['accepted', 'Accept'], ['tentative', 'Maybe'],
    ['declined', 'Decline']];

// The form's inputs a draft keeps, by id (ev-all-day is a checkbox).
const DRAFT_INPUTS = ['ev-title', 'ev-all-day', 'ev-start', 'ev-end',
    'ev-location', 'ev-description', 'ev-participants', 'ev-visibility',
    'ev-conflicts'];

export class EventDialog {
    constructor(app) {
        this.app = app;
        this.dlg = $('event-dialog');
        this.form = $('event-form');
        this.ev = null;         // the event as last read (null: new)
        this.suggestSeq = 0;    // of the newest suggest()
        this.target = null;     // where a new event goes (picker's current)
        this.etag = null;
        this.stale = false;
        this.editable = false;  // the dialog shown offers Save
        this.shown = null;      // the inputs as presented (values())
        this.draft = null;      // see the top; keepDraft()

        this.form.addEventListener('submit', (e) => {
            e.preventDefault();
            this.app.guard(() => this.save(), $('event-errors'));
        });
        $('ev-cancel').addEventListener('click', () => this.close());
        $('ev-delete').addEventListener('click',
            () => this.app.guard(() => this.remove(), $('event-errors')));
        $('ev-reload').addEventListener('click',
            () => this.app.guard(() => this.reload(), $('event-errors')));
        $('ev-all-day').addEventListener('change',
            () => this.setAllDay($('ev-all-day').checked, true));
        $('ev-participants').addEventListener('input',
            () => this.suggest());
        this.dlg.addEventListener('close', () => {
            this.ev = null;
        });
    }

    errors() {
        return $('event-errors');
    }

    close() {
        if (this.dlg.open) {
            this.dlg.close();
        }
    }

    // Logged out: closed, and nothing of the former user left in it (the
    // usernames suggested, the answers listed).  A draft kept before
    // (keepDraft) stays, out of the page.
    reset() {
        this.close();
        this.ev = null;
        this.target = null;
        this.etag = null;
        this.stale = false;
        this.editable = false;
        this.shown = null;
        this.form.reset();
        this.setAllDay(false, false);   // the box is unticked again
        clear($('ev-responses'));
        clear($('user-suggestions'));
        clear(this.errors());
    }

    // The draft's inputs, as they are now.
    values() {
        return Object.fromEntries(DRAFT_INPUTS.map((id) => {
            const el = $(id);
            return [id, el.type === 'checkbox' ? el.checked : el.value];
        }));
    }

    // The session of user is ending: the dialog's unsaved edits, if any,
    // become the draft (before reset() empties the form).  Returns whether
    // there was one.
    keepDraft(user) {
        this.draft = null;
        const now = this.values();
        if (!this.dlg.open || !this.editable || !this.shown ||
            DRAFT_INPUTS.every((id) => now[id] === this.shown[id])) {
            return false;
        }
        this.draft = {user, values: now, shown: this.shown, ev: this.ev,
            etag: this.etag, target: this.target, stale: this.stale,
            title: $('event-dialog-title').textContent};
        return true;
    }

    dropDraft() {
        this.draft = null;
    }

    // user has just logged in: the draft is theirs to save again, or
    // dropped unseen.
    resume(user) {
        const d = this.draft;
        this.draft = null;
        if (!d || d.user !== user) {
            return;
        }
        this.ev = d.ev;
        this.etag = d.etag;
        this.target = d.target;
        this.stale = d.stale;
        if (d.ev) {
            this.fill(d.ev);        // its answers listed, as before
        } else {
            this.form.reset();
        }
        // The inputs' types first: a date does not fit a datetime-local.
        $('ev-all-day').checked = d.values['ev-all-day'];
        this.setAllDay(d.values['ev-all-day'], false);
        for (const id of DRAFT_INPUTS) {
            if (id !== 'ev-all-day') {
                $(id).value = d.values[id];
            }
        }
        this.present(d.title, true, null);
        // Still unsaved: should this session end too, it is kept again.
        this.shown = d.shown;
        $('ev-reload').hidden = !d.stale;
        this.app.info('Your session ended before this was saved. Your ' +
            'edits are back: save again.', this.errors());
    }

    // Switches the time inputs between instants and dates, converting the
    // values when convert is set (the user ticked the box).
    setAllDay(on, convert) {
        const s = $('ev-start');
        const e = $('ev-end');
        const sv = s.value;
        const ev = e.value;
        s.type = on ? 'date' : 'datetime-local';
        e.type = on ? 'date' : 'datetime-local';
        $('ev-end-label').textContent = on ? 'Last day' : 'Ends';
        if (convert) {
            s.value = on ? sv.slice(0, 10) : (sv ? `${sv}T09:00` : '');
            e.value = on ? ev.slice(0, 10) : (ev ? `${ev}T10:00` : '');
        }
    }

    fill(ev) {
        const f = this.form;
        f.reset();
        $('ev-title').value = ev.title || '';
        $('ev-location').value = ev.location || '';
        $('ev-description').value = ev.description || '';
        $('ev-visibility').value = ev.visibility || 'default';
        $('ev-conflicts').value = 'allow';
        $('ev-all-day').checked = !!ev.all_day;
        this.setAllDay(!!ev.all_day, false);
        const [s, e] = t.eventSpan(ev);
        if (ev.all_day) {
            $('ev-start').value = t.localDate(s);
            $('ev-end').value = t.localDate(t.addDays(e, -1));
        } else {
            $('ev-start').value = t.localDateTime(s);
            $('ev-end').value = t.localDateTime(e);
        }
        const parts = ev.participants || {};
        $('ev-participants').value = Object.keys(parts).join(', ');
        clear($('ev-responses')).append(...Object.entries(parts).map(
            ([u, r]) => h('li', {dataset: {user: u}},
                `${u}: ${r.replace('_', ' ')}`)));
    }

    // A new event on day (a Date) in target (calendars.js current(): the
    // user's calendar or a group's they lead): the next whole hour when
    // day is today.
    openNew(day, target) {
        this.ev = null;
        this.target = target;
        this.etag = null;
        this.stale = false;
        const now = new Date();
        let start = new Date(day.getFullYear(), day.getMonth(),
            day.getDate(), 9, 0);
        if (t.startOfDay(day).getTime() === t.startOfDay(now).getTime() &&
            now.getHours() < 23) {
            start = new Date(day.getFullYear(), day.getMonth(),
                day.getDate(), now.getHours() + 1, 0);
        }
        this.fill({start: start.toISOString(),
            end: new Date(start.getTime() + 3600000).toISOString()});
        this.present(target.group ? `New event in “${target.name}”`
            : 'New event', true, null);
    }

    // An event of the agenda: fetched again for its current version.
    async openExisting(summary) {
        this.app.clearMessages();
        const {event, etag} = await this.app.guard(
            () => api.getEvent(summary.calendar, summary.id)) || {};
        if (!event || !this.app.user) {
            return;
        }
        this.ev = event;
        this.etag = etag;
        this.stale = false;
        this.fill(event);
        const me = this.app.user.username;
        // Their own calendar, or a group calendar they lead.
        const editable = this.app.picker.canWrite(event.calendar);
        const answer = event.calendar === me ? null
            : (event.participants || {})[me];
        this.present(editable ? 'Edit event'
            : (answer ? 'Invitation' : 'Event'), editable, answer);
    }

    // Shows the dialog; editable: the user may write the calendar; answer:
    // the caller's response when they are a participant.
    present(title, editable, answer) {
        $('event-dialog-title').textContent = title;
        clear(this.errors());
        for (const el of this.form.querySelectorAll(
            'input, textarea, select')) {
            el.disabled = !editable;
        }
        $('ev-save').hidden = !editable;
        $('ev-delete').hidden = !editable || !this.ev;
        $('ev-reload').hidden = true;
        $('ev-conflicts').closest('div').hidden = !editable;
        const ro = $('ev-readonly');
        ro.hidden = editable;
        ro.textContent = this.ev && !editable ? this.readOnlyNote() : '';
        const rsvp = clear($('ev-rsvp'));
        rsvp.hidden = answer === undefined || answer === null;
        if (!rsvp.hidden) {
            rsvp.append(...RESPONSES.map(([value, label]) => h('button', {
                type: 'button', 'aria-pressed': String(answer === value),
                onclick: () => this.app.guard(
                    () => this.answer(value), this.errors()),
            }, label)));
        }
        if (!this.dlg.open) {
            this.dlg.showModal();
        }
        (editable ? $('ev-title') : $('ev-cancel')).focus();
        this.editable = editable;
        this.shown = this.values();
    }

    // Why the open event cannot be changed here.
    readOnlyNote() {
        const cal = this.ev.calendar;
        if (cal.startsWith('g:')) {
            const g = this.app.picker.groupOf(cal);
            return `Only the leaders of “${g ? g.name : cal}” can change ` +
                'this event of their group.';
        }
        return `${cal} invited you. Only they can change it.`;
    }

    fields() {
        const allDay = $('ev-all-day').checked;
        let start = $('ev-start').value;
        let end = $('ev-end').value;
        if (allDay) {
            // The form shows the last day; the API wants the day after.
            const last = t.parseDate(end);
            end = Number.isNaN(last.getTime()) ? end
                : t.localDate(t.addDays(last, 1));
        } else {
            start = t.rfc3339FromLocal(start);
            end = t.rfc3339FromLocal(end);
        }
        const participants = $('ev-participants').value.split(/[\s,;]+/)
            .map((s) => s.trim()).filter(Boolean);
        return {
            title: $('ev-title').value,
            description: $('ev-description').value,
            location: $('ev-location').value,
            start, end, all_day: allDay,
            time_zone: (this.ev && this.ev.time_zone) || t.localZone(),
            visibility: $('ev-visibility').value,
            participants,
            conflict_policy: $('ev-conflicts').value,
        };
    }

    async save() {
        clear(this.errors());
        const f = this.fields();
        const me = this.app.user.username;
        const gen = api.currentGeneration();
        let r;
        try {
            if (this.ev) {
                r = await api.updateEvent(this.ev.calendar, this.ev.id,
                    this.etag, f);
            } else {
                r = await api.createEvent(this.target.calendar, f);
            }
        } catch (e) {
            // A 401 ended the session (and emptied the dialog) already:
            // its error has no dialog left to go in.
            if (api.isCurrent(gen)) {
                this.explain(e);
            }
            return;
        }
        this.close();
        const g = this.app.picker.groupOf(r.event.calendar);
        const saved = `Saved “${r.event.title}”` +
            (g ? ` in “${g.name}”` : '');
        const conflicts = r.conflicts || [];
        if (conflicts.length) {
            this.app.info(`${saved}, but it overlaps: ` +
                describeConflicts(conflicts, me) + '.');
        } else {
            this.app.info(`${saved}.`);
        }
        await this.app.guard(() => this.app.calendar.load());
    }

    // Errors with a story of their own; the others show as they come.
    explain(e) {
        if (e.status === 412) {
            this.stale = true;
            $('ev-reload').hidden = false;
            this.app.error(new api.ApiError(e.status, e.code,
                'Someone changed this event after you opened it: ' +
                `${e.message}. Your edits are kept here; load the latest ` +
                'version to see theirs (it replaces your edits).'),
            this.errors());
        } else if (e.status === 409 && e.code === 'double_booked') {
            this.app.error(new api.ApiError(e.status, e.code,
                `${e.message}: ${describeConflicts(e.conflicts,
                    this.app.user.username)}. Choose “Allow” under ` +
                'Overlaps to save it anyway.'), this.errors());
        } else {
            this.app.error(e, this.errors());
        }
    }

    async reload() {
        const {event, etag} = await api.getEvent(this.ev.calendar,
            this.ev.id);
        this.ev = event;
        this.etag = etag;
        this.stale = false;
        this.fill(event);
        this.present('Edit event', true, null);
        this.app.info('Loaded the latest version.', this.errors());
    }

    async remove() {
        const title = this.ev.title;
        if (!window.confirm(`Delete “${title}”? Invitees are told.`)) {
            return;
        }
        const gen = api.currentGeneration();
        try {
            await api.deleteEvent(this.ev.calendar, this.ev.id, this.etag);
        } catch (e) {
            if (api.isCurrent(gen)) {     // as in save()
                this.explain(e);
            }
            return;
        }
        this.close();
        this.app.info(`Deleted “${title}”.`);
        await this.app.guard(() => this.app.calendar.load());
    }

    async answer(response) {
        const r = await api.rsvp(this.ev.calendar, this.ev.id, response);
        this.close();
        this.app.info(`You answered “${response}” to ` +
            `“${(r.event && r.event.title) || this.ev.title}”.`);
        await this.app.guard(() => this.app.calendar.load());
        await this.app.guard(() => this.app.invitations.load());
    }

    // A notification arrived while the dialog is open on an event: say so
    // (saving would get 412), but never overwrite the user's edits.
    remoteChange() {
        if (!this.dlg.open || !this.ev || this.stale) {
            return;
        }
        const {calendar, id, version} = this.ev;
        api.getEvent(calendar, id).then(({event}) => {
            if (!this.ev || this.ev.id !== id || event.version === version) {
                return;
            }
            if ($('ev-save').hidden) {
                // Read only: nothing of the user's to keep, show the news.
                this.ev = event;
                this.fill(event);
                return;
            }
            this.app.info('This event was just changed by someone else; ' +
                'saving now will be refused unless you load the latest ' +
                'version.', this.errors());
            $('ev-reload').hidden = false;
        }, (e) => {
            if (e.status === 404 && this.ev && this.ev.id === id) {
                this.app.error(new api.ApiError(404, e.code,
                    'This event no longer exists (deleted or you were ' +
                    'removed from it).'), this.errors());
            }
        });
    }

    // Username suggestions for the last name being typed.
    async suggest() {
        // a later keystroke outdates this call's answer
        const seq = ++this.suggestSeq;
        const last = $('ev-participants').value.split(/[\s,;]+/).pop();
        if (!/^[A-Za-z0-9_.-]{2,32}$/.test(last)) {
            return;
        }
        const typed = $('ev-participants').value;
        const head = typed.slice(0, typed.length - last.length);
        const list = await api.users(last).catch(() => []);
        if (seq !== this.suggestSeq) {
            return;
        }
        clear($('user-suggestions')).append(...list.map(
            (u) => h('option', {value: head + u.username},
                u.display_name || u.username)));
    }
}

function describeConflicts(conflicts, me) {
    return conflicts.map((c) => {
        const who = c.who === me ? 'you' : c.who;
        // An all-day event's are dates ("2026-12-24", end exclusive), the
        // same day everywhere: new Date() would take them for UTC
        // midnights, the evening before west of Greenwich.
        if (t.isDate(c.start)) {
            return `${who} ${t.fmtSpan({all_day: true, start: c.start,
                end: c.end})}`;
        }
        const s = new Date(c.start);
        const e = new Date(c.end);
        return `${who} ${t.fmtDay(s)} ${t.fmtTime(s)}–${t.fmtTime(e)}`;
    }).join('; ');
}
