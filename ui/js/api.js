// api.js: the REST API v1 of this origin (ngx_agenda_module/openapi.yaml).
//
// Every call goes through request(), which adds the bearer token, sends
// JSON, and turns every answer that is not 2xx into an ApiError carrying
// the API's own {"error": {"code", "message"}} so the UI can show it as
// is.  The token lives in sessionStorage (this tab only, gone when the tab
// closes) and in memory; never in a cookie, never in localStorage.

const BASE = '/api/v1';
const TOKEN_KEY = 'agenda.session';

export class ApiError extends Error {
    // status: HTTP status (0 when the server could not be reached);
    // code: the API's error code; conflicts: for 409 double_booked.
    constructor(status, code, message, extra = {}) {
        super(message);
        this.name = 'ApiError';
        this.status = status;
        this.code = code;
        this.conflicts = extra.conflicts || [];
    }

    // The text shown to people: status, code and the server's message.
    describe() {
        if (this.status === 0) {
            return this.message;
        }
        return `${this.message} (${this.status} ${this.code})`;
    }
}

let session = null;                 // {token, username, expires}
const unauthorizedListeners = [];

export function loadSession() {
    try {
        const raw = sessionStorage.getItem(TOKEN_KEY);
        const s = raw ? JSON.parse(raw) : null;
        if (s && typeof s.token === 'string' && s.expires > Date.now()) {
            session = s;
        } else {
            sessionStorage.removeItem(TOKEN_KEY);
        }
    } catch (e) {
        session = null;     // storage disabled or corrupt: log in again
    }
    return session;
}

export function currentSession() {
    return session;
}

function saveSession(s) {
    session = s;
    try {
        if (s) {
            sessionStorage.setItem(TOKEN_KEY, JSON.stringify(s));
        } else {
            sessionStorage.removeItem(TOKEN_KEY);
        }
    } catch (e) {
        // Storage unavailable (private mode quotas): memory only.
    }
}

export function clearSession() {
    saveSession(null);
}

// fn(error) runs when an authenticated call is refused with 401: the token
// expired or was revoked (password changed), so the session is over.
export function onUnauthorized(fn) {
    unauthorizedListeners.push(fn);
}

function randomKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// One call.  opts: body (sent as JSON), ifMatch (an ETag, sent verbatim),
// idempotent (true: send an Idempotency-Key so a retried create is applied
// once), auth (false for /auth/*).  Resolves to {status, body, etag};
// rejects with ApiError.
export async function request(method, path, opts = {}) {
    const headers = {Accept: 'application/json'};
    const auth = opts.auth !== false;
    if (auth) {
        if (!session) {
            throw new ApiError(401, 'not_logged_in', 'You are not logged in');
        }
        headers.Authorization = `Bearer ${session.token}`;
    }
    let body;
    if (opts.body !== undefined) {
        headers['Content-Type'] = 'application/json';
        body = JSON.stringify(opts.body);
    }
    if (opts.ifMatch) {
        headers['If-Match'] = opts.ifMatch;
    }
    if (opts.idempotent) {
        headers['Idempotency-Key'] = randomKey();
    }
    let resp;
    try {
        resp = await fetch(BASE + path, {
            method, headers, body, cache: 'no-store',
            credentials: 'omit', redirect: 'error',
        });
    } catch (e) {
        throw new ApiError(0, 'network',
            `Cannot reach the server (${e.message}); check the connection ` +
            'and try again');
    }
    let data = null;
    const text = await resp.text();
    if (text) {
        try {
            data = JSON.parse(text);
        } catch (e) {
            data = null;
        }
    }
    if (!resp.ok) {
        const err = data && data.error;
        const apiErr = err && typeof err.message === 'string'
            ? new ApiError(resp.status, err.code || 'error', err.message, err)
            : new ApiError(resp.status, 'http_error',
                `The server answered ${resp.status} ${resp.statusText}`);
        if (resp.status === 401 && auth) {
            saveSession(null);
            unauthorizedListeners.forEach((fn) => fn(apiErr));
        }
        throw apiErr;
    }
    return {status: resp.status, body: data, etag: resp.headers.get('ETag')};
}

// ---- the routes the client uses -------------------------------------------

export async function register(fields) {
    return (await request('POST', '/auth/register',
        {body: fields, auth: false})).body;
}

export async function login(username, password) {
    const r = await request('POST', '/auth/login',
        {body: {username, password}, auth: false});
    const ttl = Number(r.body.expires_in) || 900;
    // The username the server knows (folded to lower case).
    saveSession({token: r.body.access_token, username: '',
        expires: Date.now() + ttl * 1000});
    try {
        const me = await request('GET', '/me');
        const user = me.body.user || me.body;
        saveSession({...session, username: user.username});
        return user;
    } catch (e) {
        saveSession(null);
        throw e;
    }
}

const enc = encodeURIComponent;

export function eventPath(calendar, id) {
    return `/calendars/${enc(calendar)}/events` + (id ? `/${enc(id)}` : '');
}

export async function agenda(from, to) {
    return (await request('GET',
        `/agenda?from=${enc(from)}&to=${enc(to)}`)).body;
}

// One page of a calendar's events overlapping [from, to) (a username or
// g:<group id>); cursor: next_cursor of the previous page.
export async function calendarEvents(calendar, from, to, cursor) {
    let q = `${eventPath(calendar)}?from=${enc(from)}&to=${enc(to)}` +
        '&limit=500';
    if (cursor) {
        q += `&cursor=${enc(cursor)}`;
    }
    return (await request('GET', q)).body;
}

export async function invitations() {
    return (await request('GET', '/invitations')).body;
}

export async function getEvent(calendar, id) {
    const r = await request('GET', eventPath(calendar, id));
    return {event: r.body.event, etag: r.etag};
}

export async function createEvent(calendar, fields) {
    const r = await request('POST', eventPath(calendar),
        {body: fields, idempotent: true});
    return {...r.body, etag: r.etag};
}

export async function updateEvent(calendar, id, etag, fields) {
    const r = await request('PATCH', eventPath(calendar, id),
        {body: fields, ifMatch: etag});
    return {...r.body, etag: r.etag};
}

export async function deleteEvent(calendar, id, etag) {
    return (await request('DELETE', eventPath(calendar, id),
        {ifMatch: etag})).body;
}

export async function rsvp(calendar, id, response) {
    return (await request('POST', `${eventPath(calendar, id)}/rsvp`,
        {body: {response}})).body;
}

export async function users(prefix) {
    return (await request('GET',
        `/users?prefix=${enc(prefix)}&limit=10`)).body.users || [];
}

export async function groups() {
    return (await request('GET', '/groups')).body.groups || [];
}

export async function getGroup(id) {
    const r = await request('GET', `/groups/${enc(id)}`);
    return {group: r.body.group, etag: r.etag};
}

export async function createGroup(fields) {
    return (await request('POST', '/groups',
        {body: fields, idempotent: true})).body.group;
}

export async function deleteGroup(id, etag) {
    return (await request('DELETE', `/groups/${enc(id)}`,
        {ifMatch: etag})).body;
}

export async function addMember(id, user, role) {
    return (await request('POST', `/groups/${enc(id)}/members`,
        {body: {user, role}})).body;
}

export async function removeMember(id, user) {
    return (await request('DELETE',
        `/groups/${enc(id)}/members/${enc(user)}`)).body;
}

// /changes: target as in the API (user:<me>, calendar:<me>,
// calendar:g:<group id>); since absent gives the current token only.
export async function changes(target, since) {
    let q = `/changes?target=${enc(target)}&limit=500`;
    if (since) {
        q += `&since=${enc(since)}`;
    }
    return (await request('GET', q)).body;
}
