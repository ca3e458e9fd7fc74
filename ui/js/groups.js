// groups.js: the user's groups — create, open, and for leaders add and
// remove members (members may leave).

import * as api from './api.js';
import {$, h, clear} from './dom.js';

export class GroupsView {
    constructor(app) {
        this.app = app;
        this.list = [];
        this.selected = null;     // {group, etag} of the open group
        this.openSeq = 0;         // of the newest open()
        $('group-form').addEventListener('submit', (e) => {
            e.preventDefault();
            this.app.guard(() => this.create(e.currentTarget));
        });
    }

    reset() {
        this.list = [];
        this.selected = null;
        this.shownId = null;
        clear($('group-list'));
        clear($('group-detail')).hidden = true;
    }

    async load() {
        this.list = await api.groups();
        this.renderList();
        this.app.picker.update(this.list);
        if (this.selected) {
            const id = this.selected.group.id;
            if (this.list.some((g) => g.id === id)) {
                await this.open(id);
            } else {
                this.selected = null;
                clear($('group-detail')).hidden = true;
            }
        }
    }

    renderList() {
        const ul = clear($('group-list'));
        if (!this.list.length) {
            ul.append(h('li', {class: 'empty'}, 'You are in no group yet.'));
        }
        for (const g of this.list) {
            ul.append(h('li', {dataset: {groupId: g.id}},
                h('button', {type: 'button', class: 'link',
                    'aria-current': this.selected &&
                        this.selected.group.id === g.id ? 'true' : null,
                    onclick: () => this.app.guard(() => this.open(g.id)),
                }, g.name),
                h('span', {class: 'role'}, ` ${g.role}`)));
        }
    }

    async create(form) {
        const name = form.elements.name.value.trim();
        const description = form.elements.description.value.trim();
        const fields = {name};
        if (description) {
            fields.description = description;
        }
        const g = await api.createGroup(fields);
        form.reset();
        this.app.info(`Created the group “${g.name}”; you lead it.`);
        this.selected = {group: g, etag: null};
        await this.load();
    }

    async open(id) {
        // clicks on A then B: B's answer stays even if A's comes later
        const seq = ++this.openSeq;
        const selected = await api.getGroup(id);
        if (seq !== this.openSeq) {
            return;
        }
        this.selected = selected;
        this.renderList();
        this.renderDetail();
    }

    renderDetail() {
        if (!this.app.user || !this.selected) {
            return;     // logged out: reset() emptied the detail
        }
        const {group} = this.selected;
        const me = this.app.user.username;
        const mine = (group.members || []).find((m) => m.user === me);
        const leader = mine && mine.role === 'leader';
        // a refresh of the group shown (a live change, a reload) must not
        // wipe what the leader is typing into the add-member form
        const kept = this.shownId === group.id ? this.memberDraft() : null;
        this.shownId = group.id;
        const box = clear($('group-detail'));
        box.hidden = false;
        // (Element.append, unlike h(), would write null as "null".)
        box.append(
            h('h3', {}, group.name),
            ...(group.description ? [h('p', {}, group.description)] : []),
            h('p', {class: 'note'}, `Calendar: ${group.calendar || ''} `,
                h('button', {type: 'button', class: 'link show-calendar',
                    onclick: () => this.showCalendar(group)},
                'Show the group’s calendar')),
            h('h4', {}, 'Members'),
            h('ul', {class: 'list members'}, (group.members || []).map(
                (m) => h('li', {dataset: {member: m.user}},
                    h('span', {}, `${m.user} (${m.role})`),
                    leader && m.user !== me ? h('button', {type: 'button',
                        class: 'danger',
                        'aria-label': `Remove ${m.user}`,
                        onclick: () => this.app.guard(
                            () => this.remove(m.user)),
                    }, 'Remove') : null))));
        if (leader) {
            const form = h('form', {class: 'inline-form', novalidate: true},
                h('label', {for: 'member-user'}, 'Add member (username)'),
                h('input', {id: 'member-user', name: 'user', required: true,
                    autocomplete: 'off'}),
                h('label', {for: 'member-role'}, 'Role'),
                h('select', {id: 'member-role', name: 'role'},
                    h('option', {value: 'member'}, 'Member'),
                    h('option', {value: 'leader'}, 'Leader')),
                h('button', {type: 'submit'}, 'Add'));
            form.addEventListener('submit', (e) => {
                e.preventDefault();
                this.app.guard(() => this.add(form));
            });
            box.append(form);
            if (kept) {
                form.elements.user.value = kept.user;
                form.elements.role.value = kept.role;
                if (kept.focused) {
                    form.elements.user.focus();
                }
            }
        }
        box.append(h('div', {class: 'actions'},
            h('button', {type: 'button',
                onclick: () => this.app.guard(() => this.remove(me)),
            }, 'Leave group'),
            leader ? h('button', {type: 'button', class: 'danger',
                onclick: () => this.app.guard(() => this.destroy()),
            }, 'Delete group') : null));
    }

    /* The add-member form's state, or null when it is not shown. */
    memberDraft() {
        const input = $('member-user');
        const role = $('member-role');
        if (!input || !role) {
            return null;
        }
        return {user: input.value, role: role.value,
            focused: document.activeElement === input};
    }

    showCalendar(group) {
        this.app.picker.select(group.calendar || `g:${group.id}`);
        location.hash = '#/calendar';
    }

    async add(form) {
        const user = form.elements.user.value.trim();
        const role = form.elements.role.value;
        await api.addMember(this.selected.group.id, user, role);
        // done: empty the form on the page, which a live refresh during
        // the call may have rebuilt (keeping the name); the refresh below
        // then keeps an empty form
        const shown = $('member-user');
        (shown ? shown.form : form).reset();
        this.app.info(`Added ${user} as ${role}.`);
        await this.open(this.selected.group.id);
        $('member-user').focus();
    }

    async remove(user) {
        const g = this.selected.group;
        const me = this.app.user.username;
        const question = user === me ? `Leave “${g.name}”?`
            : `Remove ${user} from “${g.name}”?`;
        if (!window.confirm(question)) {
            return;
        }
        await api.removeMember(g.id, user);
        this.app.info(user === me ? `You left “${g.name}”.`
            : `Removed ${user}.`);
        if (user === me) {
            this.selected = null;
            clear($('group-detail')).hidden = true;
        }
        await this.load();
    }

    async destroy() {
        const {group, etag} = this.selected;
        if (!window.confirm(`Delete the group “${group.name}”?`)) {
            return;
        }
        await api.deleteGroup(group.id, etag);
        this.app.info(`Deleted “${group.name}”.`);
        this.selected = null;
        clear($('group-detail')).hidden = true;
        await this.load();
    }
}
