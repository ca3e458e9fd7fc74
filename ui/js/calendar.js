// calendar.js: the week and month views, in local time, of the calendar
// chosen in the picker (calendars.js): the user's own — GET /agenda, their
// events and those they are invited to — or a group's, GET
// /calendars/g:<id>/events.

import * as api from './api.js';
import {$, h, clear} from './dom.js';
import * as t from './time.js';

// Pages read for one view (500 events each, or less than 1 MiB).
const MAX_PAGES = 10;

// How far the midnights of two time zones can be apart (UTC-12 to
// UTC+14): see load().
const ALL_DAY_REACH_MS = 26 * 3600 * 1000;

// Every page getPage(cursor) gives, following next_cursor, up to MAX_PAGES:
// {events, truncated}.
async function everyPage(getPage) {
    const events = [];
    let cursor = null;
    for (let i = 0; i < MAX_PAGES; i++) {
        const r = await getPage(cursor);
        events.push(...(r.events || []));
        cursor = r.next_cursor;
        if (!cursor) {
            return {events, truncated: false};
        }
    }
    return {events, truncated: true};
}

const RESPONSE_LABEL = {
    needs_action: 'not answered', accepted: 'accepted',
    declined: 'declined', tentative: 'tentative',
};

export class CalendarView {
    constructor(app) {
        this.app = app;
        this.mode = 'week';
        this.anchor = new Date();
        this.events = [];
        this.shown = null;      // the picker's choice the grid shows
        this.loadSeq = 0;

        $('cal-prev').addEventListener('click', () => this.move(-1));
        $('cal-next').addEventListener('click', () => this.move(1));
        $('cal-today').addEventListener('click', () => {
            this.anchor = new Date();
            this.app.guard(() => this.load());
        });
        $('cal-week').addEventListener('click', () => this.setMode('week'));
        $('cal-month').addEventListener('click', () => this.setMode('month'));
        $('cal-new').addEventListener('click', () => {
            const today = t.startOfDay(new Date());
            const inView = this.days().some(
                (d) => d.getTime() === today.getTime());
            // a month view starts with days of the month before
            const first = this.mode === 'week' ? this.days()[0]
                : t.startOfMonth(this.anchor);
            this.app.dialog.openNew(inView ? new Date() : first,
                this.app.picker.current());
        });
    }

    // Creation is offered where the user may write: their own calendar
    // and the calendars of the groups they lead.
    controls() {
        const cur = this.app.picker.current();
        $('cal-new').hidden = !cur.writable;
        const note = $('cal-note');
        note.hidden = cur.writable;
        note.textContent = cur.writable ? ''
            : `Only the leaders of “${cur.name}” can add events to its ` +
              'calendar.';
    }

    // Logged out: nothing of the former user stays, and a load of theirs
    // still running is outdated (api.js drops its answer anyway).
    reset() {
        this.loadSeq += 1;
        this.events = [];
        this.shown = null;
        this.anchor = new Date();
        const grid = clear($('cal-grid'));
        grid.setAttribute('aria-busy', 'false');
        delete grid.dataset.calendar;
        $('cal-range').textContent = '';
        this.controls();
    }

    setMode(mode) {
        this.mode = mode;
        $('cal-week').setAttribute('aria-pressed', String(mode === 'week'));
        $('cal-month').setAttribute('aria-pressed', String(mode === 'month'));
        this.app.guard(() => this.load());
    }

    move(n) {
        const a = this.anchor;
        this.anchor = this.mode === 'week' ? t.addDays(a, 7 * n)
            : new Date(a.getFullYear(), a.getMonth() + n, 1);
        this.app.guard(() => this.load());
    }

    // The days shown: one week from Monday, or the weeks covering the
    // month.
    days() {
        let first;
        let n;
        if (this.mode === 'week') {
            first = t.startOfWeek(this.anchor);
            n = 7;
        } else {
            const m = t.startOfMonth(this.anchor);
            first = t.startOfWeek(m);
            const next = new Date(m.getFullYear(), m.getMonth() + 1, 1);
            n = Math.ceil(Math.round((next - first) / t.DAY_MS) / 7) * 7;
        }
        return Array.from({length: n}, (_, i) => t.addDays(first, i));
    }

    async load() {
        if (!this.app.user) {
            return;     // logged out: no calendar to show
        }
        const days = this.days();
        // An all-day event is drawn on its dates, but the server places
        // it at the midnights of its own time zone, up to 26 hours from
        // this one's: ask for that much more on each side, render() keeps
        // what falls on the days shown.
        const from = new Date(days[0].getTime() - ALL_DAY_REACH_MS);
        const to = new Date(t.addDays(days[days.length - 1], 1).getTime() +
            ALL_DAY_REACH_MS);
        const seq = ++this.loadSeq;
        const cur = this.app.picker.current();
        const grid = $('cal-grid');
        grid.setAttribute('aria-busy', 'true');
        if (this.shown && this.shown.calendar !== cur.calendar) {
            clear(grid);    // never another calendar's events under its name
        }
        this.controls();
        try {
            const r = await everyPage(cur.group
                ? (cursor) => api.calendarEvents(cur.calendar, t.isoUtc(from),
                    t.isoUtc(to), cursor)
                : (cursor) => api.agenda(t.isoUtc(from), t.isoUtc(to),
                    cursor));
            if (seq !== this.loadSeq || !this.app.user) {
                // A newer load (navigation, another calendar) won, or the
                // user logged out meanwhile.
                return;
            }
            this.shown = cur;
            this.events = r.events || [];
            this.render(days);
            if (r.truncated) {
                this.app.info('This period has too many events to show ' +
                    'them all; switch to the week view.');
            }
        } finally {
            if (seq === this.loadSeq) {
                grid.setAttribute('aria-busy', 'false');
            }
        }
    }

    render(days) {
        if (!this.app.user) {
            return;     // logged out: reset() emptied the grid
        }
        const me = this.app.user.username;
        const month = this.anchor.getMonth();
        $('cal-range').textContent = this.mode === 'week'
            ? `${t.fmtLongDay(days[0])} – ${t.fmtLongDay(days[6])}`
            : t.fmtMonth(this.anchor);
        const grid = clear($('cal-grid'));
        grid.className = `grid ${this.mode}`;
        grid.setAttribute('role', 'list');
        grid.setAttribute('aria-label', (this.mode === 'week'
            ? 'Days of the week' : 'Days of the month') +
            `, ${this.shown.name}`);
        grid.dataset.calendar = this.shown.calendar;
        const today = t.startOfDay(new Date()).getTime();
        for (const day of days) {
            const next = t.addDays(day, 1);
            const evs = this.events.filter((ev) => {
                const [s, e] = t.eventSpan(ev);
                return s < next && (e > day || s.getTime() === e.getTime());
            });
            const cls = ['day'];
            if (day.getTime() === today) {
                cls.push('today');
            }
            if (this.mode === 'month' && day.getMonth() !== month) {
                cls.push('outside');
            }
            grid.append(h('div', {class: cls.join(' '), role: 'listitem',
                'aria-label': `${t.fmtLongDay(day)}, ${evs.length} ` +
                    (evs.length === 1 ? 'event' : 'events'),
                dataset: {date: t.localDate(day)}},
            h('div', {class: 'day-head', 'aria-hidden': 'true'},
                this.mode === 'week' ? t.fmtDay(day) : String(day.getDate())),
            h('ul', {class: 'day-events'},
                evs.map((ev) => h('li', {}, this.chip(ev, me))))));
        }
    }

    // One event as a button that opens it.
    chip(ev, me) {
        if ((ev.calendar || '').startsWith('g:')) {
            return this.groupChip(ev, me);
        }
        const mine = ev.calendar === me;
        const [s] = t.eventSpan(ev);
        const when = ev.all_day ? 'All day' : t.fmtTime(s);
        const title = ev.busy ? 'Busy' : (ev.title || '(no title)');
        const lines = [h('span', {class: 'when'}, when),
            ' ', h('span', {class: 'title'}, title)];
        const parts = Object.entries(ev.participants || {});
        if (mine && parts.length) {
            lines.push(h('span', {class: 'who'}, parts.map(
                ([u, r]) => `${u}: ${RESPONSE_LABEL[r] || r}`).join(', ')));
        } else if (!mine) {
            const r = ev.response || (ev.participants || {})[me];
            lines.push(h('span', {class: 'who'},
                `from ${ev.calendar}` + (r ? ` · you: ${
                    RESPONSE_LABEL[r] || r}` : '')));
        }
        const cls = ['chip', mine ? 'own' : 'invited'];
        const resp = ev.response || (ev.participants || {})[me];
        if (!mine && resp) {
            cls.push(`r-${resp}`);
        }
        return h('button', {type: 'button', class: cls.join(' '),
            dataset: {eventId: ev.id, calendar: ev.calendar},
            'aria-label': `${title}, ${t.fmtSpan(ev)}` +
                (mine ? '' : `, invited by ${ev.calendar}`),
            onclick: () => this.app.dialog.openExisting(ev)}, lines);
    }

    // An event of a group calendar: its leaders see the answers of the
    // invited, everyone else their own answer when invited; in another
    // calendar's view (the user is invited to it) it names the group.
    groupChip(ev, me) {
        const [s] = t.eventSpan(ev);
        const when = ev.all_day ? 'All day' : t.fmtTime(s);
        const title = ev.busy ? 'Busy' : (ev.title || '(no title)');
        const lines = [h('span', {class: 'when'}, when),
            ' ', h('span', {class: 'title'}, title)];
        const group = this.app.picker.groupOf(ev.calendar);
        const name = group ? group.name : ev.calendar;
        const parts = Object.entries(ev.participants || {});
        const resp = ev.response || (ev.participants || {})[me];
        const who = [];
        if (this.shown.calendar !== ev.calendar) {
            who.push(`in ${name}`);
        }
        if (this.app.picker.canWrite(ev.calendar) && parts.length) {
            who.push(parts.map(
                ([u, r]) => `${u}: ${RESPONSE_LABEL[r] || r}`).join(', '));
        } else if (resp) {
            who.push(`you: ${RESPONSE_LABEL[resp] || resp}`);
        }
        if (who.length) {
            lines.push(h('span', {class: 'who'}, who.join(' · ')));
        }
        const cls = ['chip', 'in-group'];
        if (resp) {
            cls.push(`r-${resp}`);
        }
        return h('button', {type: 'button', class: cls.join(' '),
            dataset: {eventId: ev.id, calendar: ev.calendar},
            'aria-label': `${title}, ${t.fmtSpan(ev)}, group ${name}`,
            onclick: () => this.app.dialog.openExisting(ev)}, lines);
    }
}
