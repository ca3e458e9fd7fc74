// live.js: notifications over WSS and resynchronisation with /changes.
//
// The sockets are wss://<this origin>/api/v1/notifications with the access
// token in the access_token query parameter (browsers cannot set headers
// on a WebSocket).  One subscription is one channel
// (ngx_agenda_module/ngx_agenda_subscriber.c): the client always holds
// the user's own, user/<me> (their calendar, invitations, memberships),
// and while a group calendar is shown a second one, ?channel=group/<id>,
// the only channel the edge tells about that calendar's events.  Messages
// are hints ("event.updated id X"): the client refetches what changed.
// Delivery is best effort, so the client also keeps /changes sync tokens
// for its targets (user:<me>, calendar:<me>, and calendar:g:<id> of the
// group shown), taken before each full load: after a reconnect it asks
// what changed since, and reloads when anything did (or when the token is
// too old: 410 sync_token_expired, 400 invalid_sync_token).
//
// A Live serves one session: stop() (logout) closes its sockets before
// the next session's start(), and what it was awaiting then (a sync
// token, a catch-up) is dropped — `epoch` tells the two apart — so a former
// user's tokens never mix with the next one's.

import * as api from './api.js';

const MAX_BACKOFF_MS = 30000;

// One subscription, reconnected with backoff until closed.
class Socket {
    // channel: null for the user's own, else 'group/<id>'.
    constructor(live, channel) {
        this.live = live;
        this.channel = channel;
        this.ws = null;
        this.timer = null;
        this.closed = false;
        this.backoff = 1000;
        this.everConnected = false;
        this.open = false;
        this.state = 'Connecting…';
    }

    name() {
        return this.channel || `user/${this.live.username}`;
    }

    setState(text, open) {
        this.state = text;
        this.open = open;
        this.live.status();
    }

    connect() {
        const s = api.currentSession();
        if (this.closed || !s) {
            return;
        }
        const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
        let url = `${proto}//${location.host}/api/v1/notifications` +
            `?access_token=${encodeURIComponent(s.token)}`;
        if (this.channel) {
            url += `&channel=${encodeURIComponent(this.channel)}`;
        }
        this.setState(
            this.everConnected ? 'Reconnecting…' : 'Connecting…', false);
        const ws = new WebSocket(url);
        this.ws = ws;
        ws.onopen = () => {
            const reconnect = this.everConnected;
            this.everConnected = true;
            this.backoff = 1000;
            this.setState('Live', true);
            // A group's socket opens after its baseline: what changed in
            // between is asked for, as after any reconnect.
            if (reconnect || this.channel) {
                this.live.resync();
            }
        };
        ws.onmessage = (ev) => {
            let msg;
            try {
                msg = JSON.parse(ev.data);
            } catch (e) {
                return;         // not ours: ignore
            }
            if (msg && typeof msg.type === 'string') {
                this.live.h.onMessage(msg);
            }
        };
        ws.onclose = () => {
            this.ws = null;
            if (this.closed) {
                return;
            }
            const wait = this.backoff;
            this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
            this.setState(
                `Offline — retrying in ${Math.round(wait / 1000)} s`, false);
            this.timer = setTimeout(() => this.connect(), wait);
        };
    }

    close() {
        this.closed = true;
        clearTimeout(this.timer);
        if (this.ws) {
            // Detached first: nothing this socket still delivers (an open
            // or a message racing with the close) reaches the page.
            const ws = this.ws;
            ws.onopen = null;
            ws.onmessage = null;
            ws.onclose = null;
            ws.close(1000);
            this.ws = null;
        }
    }
}

export class Live {
    // handlers: onMessage(msg), onResync(kinds: Set of 'events'|'groups'|
    // 'account' known to have changed; the handler reloads them and what
    // catchUp() tells), onStatus(text, connected, channels: the names of
    // the open subscriptions).
    constructor(handlers) {
        this.h = handlers;
        this.stopped = true;
        this.own = null;            // Socket of user/<me>
        this.group = null;          // Socket of group/<id>, when shown
        this.groupId = null;
        this.tokens = new Map();    // target -> sync token
        this.epoch = 0;             // +1 at every stop()
        this.valid = false;         // see invalidate()
    }

    start(username) {
        this.stop();
        this.stopped = false;
        this.username = username;
        this.own = new Socket(this, null);
        this.own.connect();
    }

    stop() {
        this.stopped = true;
        this.epoch += 1;
        this.valid = false;
        for (const s of [this.own, this.group]) {
            if (s) {
                s.close();
            }
        }
        this.own = null;
        this.group = null;
        this.groupId = null;
        this.tokens.clear();
        this.h.onStatus('Offline', false, []);
    }

    // "Live" when every subscription is open, else the state of one that
    // is not.
    status() {
        const socks = [this.own, this.group].filter(Boolean);
        if (this.stopped || !socks.length) {
            return;
        }
        const down = socks.find((s) => !s.open);
        this.h.onStatus(down ? down.state : 'Live', !down,
            socks.filter((s) => s.open).map((s) => s.name()));
    }

    groupTarget() {
        return this.groupId ? `calendar:g:${this.groupId}` : null;
    }

    // The group calendar target counts once its baseline is taken.
    targets() {
        const t = [`user:${this.username}`, `calendar:${this.username}`];
        const g = this.groupTarget();
        if (g && this.tokens.has(g)) {
            t.push(g);
        }
        return t;
    }

    // Follows the calendar of group id (null: none): its sync token first,
    // then its channel.  Called before the calendar's full load.
    async watchGroup(id) {
        if (this.stopped || id === this.groupId) {
            return;
        }
        const epoch = this.epoch;
        if (this.group) {
            this.group.close();
            this.group = null;
        }
        if (this.groupId) {
            this.tokens.delete(this.groupTarget());
        }
        this.groupId = id;
        this.status();
        if (!id) {
            return;
        }
        const target = this.groupTarget();
        let r;
        try {
            r = await api.changes(target);
        } catch (e) {
            if (epoch === this.epoch && this.groupId === id) {
                this.groupId = null;    // a later switch tries again
            }
            throw e;
        }
        if (epoch !== this.epoch || this.groupId !== id) {
            return;         // logged out, or another calendar was chosen
        }
        this.tokens.set(target, r.sync_token);
        this.group = new Socket(this, `group/${id}`);
        this.group.connect();
    }

    // The current sync tokens: called before a full load, so nothing
    // committed after it is missed.
    async baseline() {
        const epoch = this.epoch;
        for (const t of this.targets()) {
            const r = await api.changes(t);
            if (epoch !== this.epoch) {
                return;
            }
            this.tokens.set(t, r.sync_token);
        }
        this.valid = true;
    }

    // The page failed to load something the tokens may already be past:
    // until the next baseline, catchUp() answers "everything" (null), so
    // the next resync or reload loads the whole page again.
    invalidate() {
        this.valid = false;
    }

    // Changes since the tokens, following `more`; returns the set of kinds
    // that changed, or null when a full reload is needed.
    async catchUp() {
        if (!this.valid) {
            return null;
        }
        const epoch = this.epoch;
        const kinds = new Set();
        for (const t of this.targets()) {
            let since = this.tokens.get(t);
            if (!since) {
                return null;
            }
            for (let i = 0; i < 50; i++) {
                let r;
                try {
                    r = await api.changes(t, since);
                } catch (e) {
                    if (e.status === 410 || e.status === 400) {
                        return null;
                    }
                    throw e;
                }
                if (epoch !== this.epoch) {
                    return kinds;   // stopped: these tokens are gone
                }
                for (const c of r.changes || []) {
                    kinds.add(kindOf(c.type, c.target));
                }
                since = r.sync_token;
                this.tokens.set(t, since);
                if (!r.more) {
                    break;
                }
            }
        }
        return kinds;
    }

    // After a (re)connect: whatever happened while the socket was down is
    // what /changes tells since the tokens.  The page's reload asks it (an
    // empty set: nothing known to have changed yet), so the catch-up is
    // done once, and two sockets reconnecting together make one reload.
    resync() {
        if (!this.stopped) {
            this.h.onResync(new Set());
        }
    }
}

// What a notification or change type affects in the client.
export function kindOf(type, target) {
    if (typeof type !== 'string') {
        return 'events';
    }
    if (type.startsWith('group.') ||
        (typeof target === 'string' && target.startsWith('group:'))) {
        return 'groups';
    }
    if (type.startsWith('user.')) {
        return 'account';
    }
    return 'events';
}
