// api.js: the REST API v1 of this origin (ngx_agenda_module/openapi.yaml).
//
// Every call goes through request(), which adds the bearer token, sends
// JSON, and turns every answer that is not 2xx into an ApiError carrying
// the API's own {"error": {"code", "message"}} so the UI can show it as
// is.  The token lives in sessionStorage (this tab only, gone when the tab
// closes) and in memory; never in a cookie, never in localStorage.
//
// Sessions.  A request can outlive the session it was made for: the user
// logs out (or someone else logs in, in the same tab) while it is in
// flight.  Its answer must then never reach the page — it would show the
// former user's data to the next one, or render for nobody.  So every
// session (a login, a token restored at boot, and the logged-out state
// between two of them) has a generation number and an AbortController:
// ending it aborts its requests still in flight, and any answer that
// comes back in a later generation is dropped as a StaleSessionError,
// which the UI ignores (main.js app.error).

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

// The answer to a request of a session that has ended (or a request made
// by code of such a session when no one is logged in).  Not an error for
// the user: there is no one left to show it to.
export class StaleSessionError extends Error {
    constructor() {
        super('The session this request belonged to has ended');
        this.name = 'StaleSessionError';
    }
}

export function isStale(err) {
    return err instanceof StaleSessionError;
}

let session = null;                 // {token, username, expires}
let generation = 0;                 // of the session, see above
let controller = new AbortController();
const unauthorizedListeners = [];

// Idempotency keys.  Every write carries one, kept for that exact request
// (method, path, If-Match and body) while it is in flight and while its
// outcome is unknown (no answer, or 502/503/504: the server may have
// applied it): the same request again, a second click or the user's
// retry, is then answered with the first result instead of being applied
// twice (openapi.yaml, "Idempotency"; a DELETE that did apply answers 404
// then, the event being gone).  Any other answer settles the request and
// forgets its key; a request changed in any way is a new one, with a new
// key.  Keys belong to the session: a new one starts with none.
const UNSETTLED_MAX = 64;
let unsettled = new Map();          // request fingerprint -> key

// The current session's generation: code that goes on after an await
// compares it with isCurrent() before acting for the user.
export function currentGeneration() {
    return generation;
}

export function isCurrent(gen) {
    return gen === generation;
}

// A session begins or ends: what is still in flight belongs to the one
// that is over.
function nextGeneration() {
    controller.abort();
    controller = new AbortController();
    generation += 1;
    unsettled = new Map();
}

export function loadSession() {
    let s = null;
    try {
        const raw = sessionStorage.getItem(TOKEN_KEY);
        s = raw ? JSON.parse(raw) : null;
        if (!(s && typeof s.token === 'string' && s.expires > Date.now())) {
            s = null;
            sessionStorage.removeItem(TOKEN_KEY);
        }
    } catch (e) {
        s = null;           // storage disabled or corrupt: log in again
    }
    if (s) {
        nextGeneration();
        session = s;
    }
    return session;
}

export function currentSession() {
    return session;
}

function store(s) {
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

// Ends the session (logout, 401, failed login): its requests in flight
// are aborted and their answers dropped.
export function clearSession() {
    nextGeneration();
    store(null);
}

// fn(error) runs when an authenticated call is refused with 401: the token
// expired or was revoked (password changed), so the session is over.
export function onUnauthorized(fn) {
    unauthorizedListeners.push(fn);
}

function unauthorized(err) {
    clearSession();
    unauthorizedListeners.forEach((fn) => fn(err));
}

// Is the session still good?  Resolves if so (GET /me answered); rejects
// with the ApiError of the answer otherwise — a 401 (the token expired or
// was revoked) having ended the session as any 401 does.  A token past
// its expiry here is over without asking: the server would refuse it too.
// For what cannot see the server's 401 itself (a WebSocket handshake).
export async function checkSession() {
    if (!session) {
        throw new StaleSessionError();
    }
    if (!(session.expires > Date.now())) {
        const err = new ApiError(401, 'invalid_token',
            'the access token has expired; log in again');
        unauthorized(err);
        throw err;
    }
    await request('GET', '/me');
}

function randomKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// The request is in flight or its outcome unknown: keep its key for the
// same request again (the newest last, the oldest dropped past
// UNSETTLED_MAX).
function keepUnsettled(fingerprint, key) {
    unsettled.delete(fingerprint);
    unsettled.set(fingerprint, key);
    if (unsettled.size > UNSETTLED_MAX) {
        unsettled.delete(unsettled.keys().next().value);
    }
}

// One call.  opts: body (sent as JSON), ifMatch (an ETag, sent verbatim),
// keyed (false: no Idempotency-Key on this write, see above), auth (false
// for /auth/*).  Resolves to {status, body, etag}; rejects with ApiError.
export async function request(method, path, opts = {}) {
    const gen = generation;
    const {signal} = controller;
    const headers = {Accept: 'application/json'};
    const auth = opts.auth !== false;
    if (auth) {
        if (!session) {
            // Only code of a session that ended asks without one (the UI
            // offers nothing that needs a login while logged out).
            throw new StaleSessionError();
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
    let fingerprint = null;
    if (method !== 'GET' && opts.keyed !== false) {
        fingerprint = [method, path, opts.ifMatch || '', body || '']
            .join('\n');
        headers['Idempotency-Key'] =
            unsettled.get(fingerprint) || randomKey();
        keepUnsettled(fingerprint, headers['Idempotency-Key']);
    }
    let resp;
    let text;
    try {
        resp = await fetch(BASE + path, {
            method, headers, body, cache: 'no-store',
            credentials: 'omit', redirect: 'error', signal,
        });
        text = await resp.text();
    } catch (e) {
        if (gen !== generation) {
            throw new StaleSessionError();  // aborted when it ended
        }
        throw new ApiError(0, 'network',
            `Cannot reach the server (${e.message}); check the connection ` +
            'and try again');
    }
    // Awaited twice above: the session may have ended meanwhile, and
    // then the answer (even a 401 of the former token) is no one's.
    if (gen !== generation) {
        throw new StaleSessionError();
    }
    if (fingerprint && ![502, 503, 504].includes(resp.status)) {
        unsettled.delete(fingerprint);
    }
    let data = null;
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
            unauthorized(apiErr);
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
    // a login changes nothing: nothing to apply twice
    const r = await request('POST', '/auth/login',
        {body: {username, password}, auth: false, keyed: false});
    const ttl = Number(r.body.expires_in) || 900;
    // A new session: anything of the one before is over.
    nextGeneration();
    const gen = generation;
    store({token: r.body.access_token, username: '',
        expires: Date.now() + ttl * 1000});
    // The username the server knows (folded to lower case).
    try {
        const me = await request('GET', '/me');
        const user = me.body.user || me.body;
        store({...session, username: user.username});
        return user;
    } catch (e) {
        if (gen === generation) {
            clearSession();
        }
        throw e;
    }
}

const enc = encodeURIComponent;

export function eventPath(calendar, id) {
    return `/calendars/${enc(calendar)}/events` + (id ? `/${enc(id)}` : '');
}

// One page of the caller's agenda in [from, to); cursor: next_cursor of
// the previous page.
export async function agenda(from, to, cursor) {
    let q = `/agenda?from=${enc(from)}&to=${enc(to)}`;
    if (cursor) {
        q += `&cursor=${enc(cursor)}`;
    }
    return (await request('GET', q)).body;
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
        {body: fields});
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
        {body: fields})).body.group;
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
