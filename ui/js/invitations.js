// invitations.js: GET /invitations (every events shard) with the answers
// accept / maybe / decline (POST …/rsvp).

import * as api from './api.js';
import {$, h, clear} from './dom.js';
import * as t from './time.js';

const ANSWERS = [['accepted', 'Accept'], ['tentative', 'Maybe'],
    ['declined', 'Decline']];
const LABEL = {needs_action: 'not answered', accepted: 'accepted',
    tentative: 'tentative', declined: 'declined'};

export class InvitationsView {
    constructor(app) {
        this.app = app;
        this.items = [];
        this.loadSeq = 0;       // of the newest load()
        $('inv-refresh').addEventListener('click',
            () => this.app.guard(() => this.load()));
    }

    reset() {
        this.items = [];
        clear($('inv-pending'));
        clear($('inv-answered'));
        this.badge(0);
    }

    async load() {
        // an older load answering last must not undo a newer one
        const seq = ++this.loadSeq;
        const r = await api.invitations();
        if (seq !== this.loadSeq) {
            return;
        }
        this.items = r.invitations || [];
        this.render();
    }

    badge(n) {
        const b = $('invitation-count');
        b.hidden = n === 0;
        b.textContent = n ? String(n) : '';
        b.setAttribute('aria-label', `${n} waiting for an answer`);
    }

    render() {
        if (!this.app.user) {
            return;     // logged out: reset() emptied the lists
        }
        const me = this.app.user.username;
        const answer = (ev) => ev.response ||
            (ev.participants || {})[me] || 'needs_action';
        const pending = this.items.filter((ev) => answer(ev) ===
            'needs_action');
        const answered = this.items.filter((ev) => answer(ev) !==
            'needs_action');
        this.badge(pending.length);
        const fill = (list, items, empty) => {
            clear(list);
            if (!items.length) {
                list.append(h('li', {class: 'empty'}, empty));
            }
            list.append(...items.map((ev) => this.item(ev, answer(ev))));
        };
        fill($('inv-pending'), pending, 'Nothing waiting for you.');
        fill($('inv-answered'), answered, 'No answered invitations.');
    }

    item(ev, current) {
        const title = ev.title || '(no title)';
        const headId = `inv-${ev.calendar}-${ev.id}`;
        return h('li', {class: 'invitation',
            dataset: {eventId: ev.id, response: current},
            'aria-labelledby': headId},
        h('div', {class: 'inv-main'},
            h('strong', {id: headId}, title),
            h('span', {class: 'when'}, t.fmtSpan(ev)),
            ev.location ? h('span', {class: 'where'}, ev.location) : null,
            h('span', {class: 'from'}, `from ${this.from(ev)}`),
            h('span', {class: 'status'}, `Your answer: ${LABEL[current] ||
                current}`)),
        h('div', {class: 'group', role: 'group',
            'aria-label': `Answer “${title}”`},
        ANSWERS.map(([value, label]) => h('button', {type: 'button',
            'aria-pressed': String(current === value),
            dataset: {answer: value},
            onclick: () => this.app.guard(() => this.answer(ev, value)),
        }, label))));
    }

    // Who invited: a user, or the group whose calendar holds the event.
    from(ev) {
        const g = this.app.picker.groupOf(ev.calendar);
        return g ? `the group “${g.name}”` : ev.calendar;
    }

    async answer(ev, response) {
        await api.rsvp(ev.calendar, ev.id, response);
        this.app.info(`You answered “${LABEL[response]}” to ` +
            `“${ev.title}”.`);
        await this.load();
        await this.app.guard(() => this.app.calendar.load());
    }
}
