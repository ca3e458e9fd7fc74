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
//
// The server closes a socket when its token expires or is revoked (a
// password change), and refuses the next handshake with 401 — which a
// browser never shows to the page: it only sees the socket close.  So an
// unexpected close asks whether the session still holds (Live.check)
// before it reconnects; one that does not ends through api.js's 401 path
// (main.js leave()), instead of retrying for ever under the former user's
// data.

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
            this.everConnected = true;
            this.backoff = 1000;
            this.setState('Live', true);
            // At every open, the first included: what was committed since
            // the baseline before it opened (the page's first load, a
            // group's token, a handshake that failed first, a reconnect)
            // no notification told.  Cheap when nothing changed: one
            // /changes per target (catchUp waits for a baseline still
            // being taken rather than loading everything again).
            this.live.resync();
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
            // A random 50-100% of the backoff: the browsers an edge
            // restart disconnected all at once do not come back in step.
            const wait = this.backoff * (0.5 + Math.random() * 0.5);
            this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
            this.setState(
                `Offline — retrying in ${Math.round(wait / 1000)} s`, false);
            // Perhaps closed because the token is over (see the top):
            // retried only while the session holds.  A session that ended
            // meanwhile (here or by a logout) closed this socket.
            this.live.check().then((ok) => {
                if (ok && !this.closed) {
                    this.timer = setTimeout(() => this.connect(), wait);
                }
            });
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
        this.groupSeq = 0;          // +1 at every watchGroup()
        this.valid = false;         // see invalidate()
        this.taking = null;         // the baseline() under way
        this.checking = null;       // the check() under way
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
        this.taking = null;
        this.checking = null;
        this.h.onStatus('Offline', false, []);
    }

    // Does the session still hold?  Asked after a socket closed by itself:
    // false when it is over — its expiry passed, or GET /me answers 401;
    // either ends it through api.js's 401 path (main.js leave()).  True
    // when it holds or the server cannot tell now (unreachable, 503): the
    // socket retries.  Sockets closing together (a password change closes
    // both) share one check.
    check() {
        if (this.stopped) {
            return Promise.resolve(false);
        }
        if (!this.checking) {
            const epoch = this.epoch;
            const done = (ok) => {
                if (epoch === this.epoch) {
                    this.checking = null;
                }
                return ok && epoch === this.epoch;
            };
            this.checking = api.checkSession().then(() => done(true), (e) =>
                done(!api.isStale(e) && e.status !== 401));
        }
        return this.checking;
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
    // then its channel.  Called before the calendar's full load.  Calls
    // overlap when the user switches calendars faster than /changes
    // answers (A, then mine, then A again): only the latest may open the
    // socket — the group id alone cannot tell A's first call from its
    // second, and the socket of the first would be left open for good.
    async watchGroup(id) {
        if (this.stopped || id === this.groupId) {
            return;
        }
        const epoch = this.epoch;
        const seq = ++this.groupSeq;
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
            if (epoch === this.epoch && seq === this.groupSeq) {
                this.groupId = null;    // a later switch tries again
            }
            throw e;
        }
        if (epoch !== this.epoch || seq !== this.groupSeq) {
            return;         // logged out, or another calendar was chosen
        }
        // this.group is null here: this call closed it before its await,
        // and no earlier call gets past the seq check to set it
        this.tokens.set(target, r.sync_token);
        this.group = new Socket(this, `group/${id}`);
        this.group.connect();
    }

    // The current sync tokens: called before a full load, so nothing
    // committed after it is missed.
    baseline() {
        const p = this.takeBaseline();
        this.taking = p;
        const over = () => {
            if (this.taking === p) {
                this.taking = null;
            }
        };
        p.then(over, over);
        return p;
    }

    async takeBaseline() {
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
        const epoch = this.epoch;
        // A socket that opens during the first load's baseline resyncs
        // from that baseline, not with a second full load (!valid yet).
        // A failed baseline leaves valid false: everything, below.
        if (this.taking) {
            await this.taking.catch(() => {});
            if (epoch !== this.epoch) {
                return new Set();   // stopped: nothing to load for anyone
            }
        }
        if (!this.valid) {
            return null;
        }
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
