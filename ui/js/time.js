// time.js: dates for the calendar, in the browser's local time zone.
//
// The API speaks RFC 3339 instants ("2026-12-01T09:00:00Z" or with an
// offset) and, for all-day events, dates ("2026-12-24", end exclusive).
// Form inputs speak local "YYYY-MM-DDTHH:MM" and "YYYY-MM-DD".

const pad = (n) => String(n).padStart(2, '0');

export const DAY_MS = 86400000;

export function startOfDay(d) {
    return new Date(d.getFullYear(), d.getMonth(), d.getDate());
}

export function addDays(d, n) {
    // Calendar arithmetic, not milliseconds: right across DST changes.
    return new Date(d.getFullYear(), d.getMonth(), d.getDate() + n,
        d.getHours(), d.getMinutes());
}

// Monday of d's week.
export function startOfWeek(d) {
    const day = (d.getDay() + 6) % 7;
    return addDays(startOfDay(d), -day);
}

export function startOfMonth(d) {
    return new Date(d.getFullYear(), d.getMonth(), 1);
}

// "2026-12-01T08:00:00.000Z": what from/to take.
export function isoUtc(d) {
    return d.toISOString();
}

// Local date "YYYY-MM-DD".
export function localDate(d) {
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

// Local "YYYY-MM-DDTHH:MM" for datetime-local inputs.
export function localDateTime(d) {
    return `${localDate(d)}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// A datetime-local value as an RFC 3339 instant with the local offset.
export function rfc3339FromLocal(value) {
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) {
        return value;           // let the API say what is wrong with it
    }
    const off = -d.getTimezoneOffset();
    const sign = off >= 0 ? '+' : '-';
    const a = Math.abs(off);
    return `${localDateTime(d)}:${pad(d.getSeconds())}` +
        `${sign}${pad(Math.floor(a / 60))}:${pad(a % 60)}`;
}

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

// Is s a date "YYYY-MM-DD" (an all-day event's), not an instant?
export function isDate(s) {
    return typeof s === 'string' && DATE_RE.test(s);
}

// "YYYY-MM-DD" as a local midnight.
export function parseDate(s) {
    const m = DATE_RE.exec(s);
    return m ? new Date(+m[1], +m[2] - 1, +m[3]) : new Date(NaN);
}

// [start, end) of an event as local Dates.
export function eventSpan(ev) {
    if (ev.all_day) {
        return [parseDate(ev.start), parseDate(ev.end)];
    }
    return [new Date(ev.start), new Date(ev.end)];
}

// The browser's IANA zone, for new events; UTC when it has none.
export function localZone() {
    try {
        const z = Intl.DateTimeFormat().resolvedOptions().timeZone;
        if (z && /^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(z)) {
            return z;
        }
    } catch (e) {
        // fall through
    }
    return 'UTC';
}

const timeFmt = new Intl.DateTimeFormat(undefined,
    {hour: '2-digit', minute: '2-digit'});
const dayFmt = new Intl.DateTimeFormat(undefined,
    {weekday: 'short', day: 'numeric', month: 'short'});
const longFmt = new Intl.DateTimeFormat(undefined,
    {weekday: 'long', day: 'numeric', month: 'long', year: 'numeric'});
const monthFmt = new Intl.DateTimeFormat(undefined,
    {month: 'long', year: 'numeric'});

export const fmtTime = (d) => timeFmt.format(d);
export const fmtDay = (d) => dayFmt.format(d);
export const fmtLongDay = (d) => longFmt.format(d);
export const fmtMonth = (d) => monthFmt.format(d);

// "Tue 1 Dec, 09:00–09:15" / "Thu 24 Dec (all day)".
export function fmtSpan(ev) {
    const [s, e] = eventSpan(ev);
    if (ev.all_day) {
        const last = addDays(e, -1);
        return last > s ? `${fmtDay(s)} – ${fmtDay(last)} (all day)`
            : `${fmtDay(s)} (all day)`;
    }
    if (startOfDay(s).getTime() === startOfDay(e).getTime()) {
        return `${fmtDay(s)}, ${fmtTime(s)}–${fmtTime(e)}`;
    }
    return `${fmtDay(s)} ${fmtTime(s)} – ${fmtDay(e)} ${fmtTime(e)}`;
}
