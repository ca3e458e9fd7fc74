// calendars.js: which calendar the calendar view shows — the user's own, or
// the calendar g:<group id> of one of their groups (GET /groups lists them
// with the caller's role).  Members read a group calendar; only its leaders
// write it (raft_agent/API.md, "Who may do what").

import {$, h, clear} from './dom.js';

export class CalendarPicker {
    // onSwitch(): the shown calendar changed (the user chose another, or
    // the chosen group is gone).
    constructor(app, onSwitch) {
        this.app = app;
        this.onSwitch = onSwitch;
        this.groups = [];       // GET /groups: {id, name, calendar, role}
        this.chosen = null;     // a group calendar's id; null: my calendar
        $('cal-picker').addEventListener('change', (e) => {
            this.select(e.currentTarget.value);
        });
    }

    reset() {
        this.groups = [];
        this.chosen = null;
        this.render();
    }

    // The shown calendar: {calendar, group (the list entry, or null),
    // name, writable}.
    current() {
        const me = this.app.user ? this.app.user.username : '';
        const group = this.groupOf(this.chosen);
        if (!group) {
            return {calendar: me, group: null, name: 'My calendar',
                writable: true};
        }
        return {calendar: group.calendar, group, name: group.name,
            writable: group.role === 'leader'};
    }

    // The group (list entry) whose calendar is id, or null.
    groupOf(id) {
        return typeof id === 'string' && id.startsWith('g:')
            ? this.groups.find((g) => g.calendar === id) || null : null;
    }

    // May the user change the events of calendar id?
    canWrite(id) {
        if (this.app.user && id === this.app.user.username) {
            return true;
        }
        const g = this.groupOf(id);
        return !!g && g.role === 'leader';
    }

    // Shows calendar id (the user's own for anything but a group of theirs).
    select(id) {
        const next = this.groupOf(id) ? id : null;
        const changed = next !== this.chosen;
        this.chosen = next;
        this.render();
        if (changed) {
            this.onSwitch();
        }
    }

    // The user's groups changed (GET /groups): one entry each; a chosen
    // group the user no longer belongs to gives way to their own calendar.
    update(groups) {
        this.groups = groups.map((g) => ({...g,
            calendar: g.calendar || `g:${g.id}`}));
        const gone = this.chosen !== null && !this.groupOf(this.chosen);
        if (gone) {
            this.chosen = null;
            this.app.info('You are no longer in the group whose calendar ' +
                'was shown; showing your calendar.');
        }
        this.render();
        if (gone) {
            this.onSwitch();
        } else {
            this.app.calendar.controls();
        }
    }

    render() {
        const me = this.app.user ? this.app.user.username : '';
        const sel = clear($('cal-picker'));
        sel.append(h('option', {value: me}, 'My calendar'));
        if (this.groups.length) {
            sel.append(h('optgroup', {label: 'Groups'},
                this.groups.map((g) => h('option', {value: g.calendar,
                    dataset: {role: g.role}}, g.name))));
        }
        sel.value = this.chosen || me;
    }
}
