// live.js: notifications over WSS and resynchronisation with /changes.
//
// The socket is wss://<this origin>/api/v1/notifications with the access
// token in the access_token query parameter (browsers cannot set headers
// on a WebSocket); the server subscribes it to user/<me>.  Messages are
// hints ("event.updated id X"): the client refetches what changed.
// Delivery is best effort, so the client also keeps /changes sync tokens
// for its targets, taken before each full load: after a reconnect it asks
// what changed since, and reloads when anything did (or when the token is
// too old: 410 sync_token_expired, 400 invalid_sync_token).

import * as api from './api.js';

const MAX_BACKOFF_MS = 30000;

export class Live {
    // handlers: onMessage(msg), onResync(kinds: Set of 'events'|'groups'|
    // 'account', or null for "everything"), onStatus(text, connected).
    constructor(handlers) {
        this.h = handlers;
        this.ws = null;
        this.stopped = true;
        this.backoff = 1000;
        this.timer = null;
        this.everConnected = false;
        this.tokens = new Map();    // target -> sync token
    }

    start(username) {
        this.stop();
        this.stopped = false;
        this.username = username;
        this.everConnected = false;
        this.connect();
    }

    stop() {
        this.stopped = true;
        clearTimeout(this.timer);
        if (this.ws) {
            this.ws.onclose = null;
            this.ws.close(1000);
            this.ws = null;
        }
        this.tokens.clear();
        this.h.onStatus('Offline', false);
    }

    targets() {
        return [`user:${this.username}`, `calendar:${this.username}`];
    }

    // The current sync tokens: called before a full load, so nothing
    // committed after it is missed.
    async baseline() {
        for (const t of this.targets()) {
            const r = await api.changes(t);
            this.tokens.set(t, r.sync_token);
        }
    }

    // Changes since the tokens, following `more`; returns the set of kinds
    // that changed, or null when a full reload is needed.
    async catchUp() {
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

    connect() {
        const s = api.currentSession();
        if (this.stopped || !s) {
            return;
        }
        const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
        const url = `${proto}//${location.host}/api/v1/notifications` +
            `?access_token=${encodeURIComponent(s.token)}`;
        this.h.onStatus(
            this.everConnected ? 'Reconnecting…' : 'Connecting…', false);
        const ws = new WebSocket(url);
        this.ws = ws;
        ws.onopen = () => {
            const reconnect = this.everConnected;
            this.everConnected = true;
            this.backoff = 1000;
            this.h.onStatus('Live', true);
            if (reconnect) {
                this.resync();
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
                this.h.onMessage(msg);
            }
        };
        ws.onclose = () => {
            this.ws = null;
            if (this.stopped) {
                return;
            }
            const wait = this.backoff;
            this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
            this.h.onStatus(
                `Offline — retrying in ${Math.round(wait / 1000)} s`, false);
            this.timer = setTimeout(() => this.connect(), wait);
        };
    }

    // After a reconnect: whatever happened while the socket was down.
    async resync() {
        let kinds;
        try {
            kinds = await this.catchUp();
        } catch (e) {
            kinds = null;
        }
        if (kinds === null) {
            try {
                await this.baseline();
            } catch (e) {
                // the reload below reports the error
            }
        }
        if (kinds === null || kinds.size > 0) {
            this.h.onResync(kinds);
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
