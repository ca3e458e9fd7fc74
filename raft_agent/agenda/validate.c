/*
 * validate.c — validators and parsers for agenda fields; see validate.h.
 *
 * Everything here runs on apply, on every replica, so it depends on nothing
 * but its input: no <ctype.h> (locale), no timegm()/localtime() (TZ
 * environment, libc range limits), no files.  Calendar arithmetic is the
 * proleptic Gregorian days-from-civil algorithm (H. Hinnant), exact for
 * every year this code can see.  Input is only ever read up to its NUL.
 */
#include "validate.h"

#include <string.h>

#include "tz_names.h"

#define MS_PER_DAY 86400000LL

/* ---- character classes (ASCII only, locale independent) ---------------- */

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_lower_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

static bool is_username_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '.'
           || c == '-';
}

/* The length of s, or max + 1 if it is longer than max: never reads past
 * the terminator nor more than max + 1 bytes. */
static size_t bounded_len(const char *s, size_t max)
{
    size_t n = 0;

    while (n <= max && s[n] != '\0')
        n++;
    return n;
}

/* ---- usernames and calendars -------------------------------------------- */

int agenda_username_fold(const char *in, char out[AGENDA_USERNAME_MAX + 1])
{
    size_t n = 0;

    if (in == NULL) {
        out[0] = '\0';
        return -1;
    }
    /* Byte by byte, so that in == out works: each byte is read before the
     * same position is written. */
    while (n < AGENDA_USERNAME_MAX && in[n] != '\0') {
        unsigned char c = (unsigned char)in[n];

        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (!is_username_char(c)) {
            out[0] = '\0';
            return -1;
        }
        out[n++] = (char)c;
    }
    if (in[n] != '\0' || n < AGENDA_USERNAME_MIN) {
        out[0] = '\0';
        return -1;
    }
    out[n] = '\0';
    return 0;
}

bool agenda_username_valid(const char *s)
{
    size_t n;

    if (s == NULL)
        return false;
    for (n = 0; n <= AGENDA_USERNAME_MAX && s[n] != '\0'; n++)
        if (!is_username_char((unsigned char)s[n]))
            return false;
    return n >= AGENDA_USERNAME_MIN && n <= AGENDA_USERNAME_MAX;
}

bool agenda_calendar_is_group(const char *s)
{
    static const char prefix[] = AGENDA_GROUP_CALENDAR_PREFIX;

    return s != NULL && strncmp(s, prefix, sizeof(prefix) - 1) == 0
           && agenda_hex_id_valid(s + sizeof(prefix) - 1,
                                  AGENDA_GROUP_ID_LEN);
}

bool agenda_calendar_valid(const char *s)
{
    /* A username cannot contain ':', so the two forms never overlap. */
    return agenda_username_valid(s) || agenda_calendar_is_group(s);
}

bool agenda_hex_id_valid(const char *s, size_t len)
{
    size_t i;

    if (s == NULL || len == 0)
        return false;
    for (i = 0; i < len; i++)
        if (!is_lower_hex((unsigned char)s[i]))
            return false; /* includes a premature NUL */
    return s[len] == '\0';
}

/* ---- UTF-8 text ---------------------------------------------------------- */

size_t agenda_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len, i;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0; /* below: overlong */
        else if (c == 0xED)
            hi = 0x9F; /* above: surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90; /* below: overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above: > U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    v = (v << 6) | (s[1] & 0x3F);
    for (i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

void agenda_utf8_cut(char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n) {
        uint32_t cp;
        size_t len = agenda_utf8_decode((const unsigned char *)s + i, n - i,
                                        &cp);
        if (len == 0) {
            s[i] = '\0';
            return;
        }
        i += len;
    }
}

/*
 * Characters that do not make a text non-empty: Unicode's White_Space
 * property, plus the invisible format characters people paste to get past
 * a "required" check (zero width space/joiners, word joiner, BOM).
 */
static bool is_blank(uint32_t cp)
{
    switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20:
    case 0x85: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
    case 0x200B: case 0x200C: case 0x200D: case 0x2060: case 0xFEFF:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

/* More characters that show nothing: the Hangul and Braille fillers,
 * soft hyphen, combining grapheme joiner, Mongolian vowel separator,
 * direction marks, invisible operators, deprecated format characters. */
static bool is_invisible(uint32_t cp)
{
    switch (cp) {
    case 0xAD: case 0x34F: case 0x180E: case 0x200E: case 0x200F:
    case 0x115F: case 0x1160: case 0x3164: case 0xFFA0: case 0x2800:
        return true;
    default:
        return (cp >= 0x2061 && cp <= 0x2064) ||
               (cp >= 0x206A && cp <= 0x206F);
    }
}

/* Walk s: whether a character shows, whether one redirects the text
 * (bidirectional embedding, override or isolate). */
static void line_scan(const char *s, bool *shows, bool *redirects)
{
    const unsigned char *p = (const unsigned char *)s;

    *shows = false;
    *redirects = false;
    while (*p != '\0') {
        uint32_t cp;
        size_t n = agenda_utf8_decode(p, 4, &cp);

        if (n == 0) {
            *redirects = true; /* not text: never passes */
            return;
        }
        if ((cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069))
            *redirects = true;
        else if (!is_blank(cp) && !is_invisible(cp))
            *shows = true;
        p += n;
    }
}

bool agenda_line_shows(const char *s)
{
    bool shows, redirects;
    line_scan(s, &shows, &redirects);
    return shows && !redirects;
}

bool agenda_line_redirects(const char *s)
{
    bool shows, redirects;
    line_scan(s, &shows, &redirects);
    return redirects;
}

bool agenda_text_valid(const char *s, size_t max_chars, bool multiline,
                       bool allow_empty)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t chars = 0;
    bool blank = true;

    if (s == NULL)
        return false;
    while (*p != '\0') {
        uint32_t cp;
        /* a NUL is no continuation byte: it ends any sequence, so a
         * bound of 4 never reads past the string */
        size_t n = agenda_utf8_decode(p, 4, &cp);

        if (n == 0)
            return false;
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            if (!(multiline && (cp == '\n' || cp == '\t')))
                return false;
        }
        if (++chars > max_chars)
            return false;
        if (!is_blank(cp))
            blank = false;
        p += n;
    }
    return allow_empty || !blank;
}

/* ---- e-mail -------------------------------------------------------------- */

/* RFC 5322 atext: what a dot-atom local part is made of.  The quoted-string
 * form ("a b"@x) is not accepted; the apostrophe is atext (o'brien@x). */
static bool is_atext(unsigned char c)
{
    return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* A dot-atom: atext runs separated by single dots, no leading or trailing
 * dot. */
static bool dot_atom_valid(const char *s, size_t n)
{
    size_t i;

    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (s[i - 1] == '.')
                return false;
        } else if (!is_atext(c)) {
            return false;
        }
    }
    return true;
}

/* A host name: at least two dot-separated labels of 1..63 letters, digits
 * and inner hyphens. */
static bool domain_valid(const char *s, size_t n)
{
    size_t i, label = 0, labels = 1;

    if (n == 0 || n > 253)
        return false;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return false;
            label = 0;
            labels++;
        } else if (is_alnum(c) || c == '-') {
            if (c == '-' && label == 0)
                return false;
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && s[n - 1] != '-' && labels >= 2;
}

bool agenda_email_valid(const char *s)
{
    size_t n, at;
    const char *a;

    if (s == NULL)
        return false;
    n = bounded_len(s, AGENDA_EMAIL_MAX);
    if (n > AGENDA_EMAIL_MAX)
        return false;
    a = strchr(s, '@');
    if (a == NULL || strchr(a + 1, '@') != NULL)
        return false;
    at = (size_t)(a - s);
    /* 64: the SMTP limit on a local part (RFC 5321 4.5.3.1.1). */
    return at <= 64 && dot_atom_valid(s, at)
           && domain_valid(a + 1, n - at - 1);
}

/* ---- PHC password hashes ------------------------------------------------- */

/*
 * Bounds: wide enough for any parameters a sane deployment would choose,
 * narrow enough that a stored hash can never make a login verify for
 * minutes or allocate gigabytes.
 */
#define ARGON2_M_MAX 4194304UL   /* KiB: 4 GiB */
#define ARGON2_T_MAX 100UL
#define ARGON2_P_MAX 64UL
#define SCRYPT_LN_MAX 24UL       /* N = 2^24 */
#define SCRYPT_R_MAX 32UL
#define SCRYPT_P_MAX 16UL
#define PHC_SALT_MIN 8           /* bytes, decoded */
#define PHC_SALT_MAX 64
#define PHC_HASH_MIN 16
#define PHC_HASH_MAX 64

/* Match a literal prefix; advance *p past it. */
static bool eat(const char **p, const char *lit)
{
    size_t n = strlen(lit);

    if (strncmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

/* A decimal in [min, max] without leading zeros (PHC's rule, so that each
 * value has one spelling); advance *p past it. */
static bool eat_uint(const char **p, unsigned long min, unsigned long max,
                     unsigned long *out)
{
    const char *s = *p;
    unsigned long v = 0;
    size_t n = 0;

    while (is_digit((unsigned char)s[n])) {
        if (n == 9)
            return false; /* more digits than any bound here needs */
        v = v * 10 + (unsigned long)(s[n] - '0');
        n++;
    }
    if (n == 0 || (n > 1 && s[0] == '0') || v < min || v > max)
        return false;
    *p = s + n;
    if (out != NULL)
        *out = v;
    return true;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (is_digit(c))
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/*
 * PHC's B64: standard alphabet, no padding, canonical (the unused low bits
 * of the last character are zero).  The field runs to the next '$' or the
 * end; its decoded length must be in [min, max] bytes.  Advance *p.
 */
static bool eat_b64(const char **p, size_t min, size_t max)
{
    const char *s = *p;
    size_t n = 0, bytes;
    int last = 0;

    while (s[n] != '\0' && s[n] != '$') {
        last = b64_value((unsigned char)s[n]);
        if (last < 0)
            return false;
        n++;
    }
    if (n % 4 == 1)
        return false;
    if ((n % 4 == 2 && (last & 0x0F) != 0)
        || (n % 4 == 3 && (last & 0x03) != 0))
        return false;
    bytes = n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
    if (bytes < min || bytes > max)
        return false;
    *p = s + n;
    return true;
}

static bool argon2id_params(const char **p)
{
    unsigned long m, par;

    if (!eat(p, "v=19$m=")
        || !eat_uint(p, 8, ARGON2_M_MAX, &m)
        || !eat(p, ",t=") || !eat_uint(p, 1, ARGON2_T_MAX, NULL)
        || !eat(p, ",p=") || !eat_uint(p, 1, ARGON2_P_MAX, &par))
        return false;
    /* Argon2 itself requires m >= 8 * p. */
    return m >= 8 * par;
}

static bool scrypt_params(const char **p)
{
    return eat(p, "ln=") && eat_uint(p, 1, SCRYPT_LN_MAX, NULL)
           && eat(p, ",r=") && eat_uint(p, 1, SCRYPT_R_MAX, NULL)
           && eat(p, ",p=") && eat_uint(p, 1, SCRYPT_P_MAX, NULL);
}

bool agenda_password_hash_valid(const char *s)
{
    const char *p = s;

    if (s == NULL
        || bounded_len(s, AGENDA_PASSWORD_HASH_MAX) > AGENDA_PASSWORD_HASH_MAX)
        return false;
    if (eat(&p, "$argon2id$")) {
        if (!argon2id_params(&p))
            return false;
    } else if (eat(&p, "$scrypt$")) {
        if (!scrypt_params(&p))
            return false;
    } else {
        return false;
    }
    return eat(&p, "$") && eat_b64(&p, PHC_SALT_MIN, PHC_SALT_MAX)
           && eat(&p, "$") && eat_b64(&p, PHC_HASH_MIN, PHC_HASH_MAX)
           && *p == '\0';
}

/* ---- calendar arithmetic ------------------------------------------------- */

bool agenda_is_leap(int64_t y)
{
    return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

int agenda_days_in_month(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};

    return m == 2 && agenda_is_leap(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
int64_t agenda_days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void agenda_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* Exactly n digits at *p, as a number; advance *p. */
static bool eat_digits(const char **p, int n, int *out)
{
    int v = 0, i;

    for (i = 0; i < n; i++) {
        if (!is_digit((unsigned char)(*p)[i]))
            return false; /* includes the NUL: never read past it */
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* "YYYY-MM-DD", calendar-checked; advance *p.  Year 0000 is accepted here:
 * with a negative offset it can still name an instant in range. */
static bool eat_date(const char **p, int *y, int *m, int *d)
{
    return eat_digits(p, 4, y) && eat(p, "-") && eat_digits(p, 2, m)
           && eat(p, "-") && eat_digits(p, 2, d) && *m >= 1 && *m <= 12
           && *d >= 1 && *d <= agenda_days_in_month(*y, *m);
}

static bool in_range(int64_t ms)
{
    return ms >= AGENDA_TIME_MIN_MS && ms <= AGENDA_TIME_MAX_MS;
}

/* ---- RFC 3339 ------------------------------------------------------------ */

int agenda_time_parse(const char *s, int64_t *ms)
{
    const char *p = s;
    int y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0, scale = 100;
    int64_t local, offset = 0;

    if (s == NULL || !eat_date(&p, &y, &mo, &d))
        return -1;
    if (*p != 'T' && *p != 't')
        return -1;
    p++;
    /* RFC 3339 allows second 60 for a leap second; a Unix-time instant
     * cannot represent one, so it is refused rather than smeared. */
    if (!eat_digits(&p, 2, &h) || !eat(&p, ":") || !eat_digits(&p, 2, &mi)
        || !eat(&p, ":") || !eat_digits(&p, 2, &sec)
        || h > 23 || mi > 59 || sec > 59)
        return -1;
    if (*p == '.') {
        p++;
        if (!is_digit((unsigned char)*p))
            return -1;
        /* Milliseconds are kept; further digits are truncated (not
         * rounded), so that parsing never carries into the next second. */
        for (; is_digit((unsigned char)*p); p++) {
            if (scale > 0) {
                frac += (*p - '0') * scale;
                scale /= 10;
            }
        }
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;

        p++;
        if (!eat_digits(&p, 2, &oh) || !eat(&p, ":")
            || !eat_digits(&p, 2, &om) || oh > 23 || om > 59)
            return -1;
        offset = sign * ((int64_t)oh * 60 + om) * 60000;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    local = agenda_days_from_civil(y, mo, d) * MS_PER_DAY
            + (((int64_t)h * 60 + mi) * 60 + sec) * 1000 + frac;
    /* local = utc + offset */
    if (!in_range(local - offset))
        return -1;
    *ms = local - offset;
    return 0;
}

/* Split an in-range instant into its UTC date and milliseconds of day. */
static void split(int64_t ms, int64_t *y, int *m, int *d, int64_t *of_day)
{
    int64_t days = ms / MS_PER_DAY, rem = ms % MS_PER_DAY;

    if (rem < 0) {
        rem += MS_PER_DAY;
        days--;
    }
    agenda_civil_from_days(days, y, m, d);
    *of_day = rem;
}

static char *put_digits(char *o, int64_t v, int n)
{
    int i;

    for (i = n - 1; i >= 0; i--) {
        o[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return o + n;
}

static char *put_date(char *o, int64_t y, int m, int d)
{
    o = put_digits(o, y, 4);
    *o++ = '-';
    o = put_digits(o, m, 2);
    *o++ = '-';
    return put_digits(o, d, 2);
}

int agenda_time_format(int64_t ms, char *out, size_t len)
{
    char buf[32], *o = buf;
    int64_t y, t;
    int m, d;

    if (!in_range(ms))
        return -1;
    split(ms, &y, &m, &d, &t);
    o = put_date(o, y, m, d);
    *o++ = 'T';
    o = put_digits(o, t / 3600000, 2);
    *o++ = ':';
    o = put_digits(o, t / 60000 % 60, 2);
    *o++ = ':';
    o = put_digits(o, t / 1000 % 60, 2);
    if (t % 1000 != 0) {
        *o++ = '.';
        o = put_digits(o, t % 1000, 3);
    }
    *o++ = 'Z';
    *o = '\0';
    if ((size_t)(o - buf) >= len)
        return -1;
    memcpy(out, buf, (size_t)(o - buf) + 1);
    return (int)(o - buf);
}

int agenda_date_parse(const char *s, int64_t *ms)
{
    const char *p = s;
    int y, m, d;
    int64_t v;

    if (s == NULL || !eat_date(&p, &y, &m, &d) || *p != '\0')
        return -1;
    v = agenda_days_from_civil(y, m, d) * MS_PER_DAY;
    if (!in_range(v))
        return -1; /* year 0000 */
    *ms = v;
    return 0;
}

/* Formats the UTC date that contains the instant ms (ms need not be a
 * midnight). */
int agenda_date_format(int64_t ms, char *out, size_t len)
{
    char buf[16], *o;
    int64_t y, t;
    int m, d;

    if (!in_range(ms))
        return -1;
    split(ms, &y, &m, &d, &t);
    o = put_date(buf, y, m, d);
    *o = '\0';
    if ((size_t)(o - buf) >= len)
        return -1;
    memcpy(out, buf, (size_t)(o - buf) + 1);
    return (int)(o - buf);
}

/* ---- time zones ---------------------------------------------------------- */

long agenda_tz_index(const char *s)
{
    size_t lo = 0, hi = agenda_tz_names_count;

    if (s == NULL || s[0] == '\0'
        || bounded_len(s, AGENDA_TZ_MAX) > AGENDA_TZ_MAX)
        return -1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s, agenda_tz_names[mid]);

        if (c == 0)
            return (long)mid;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

bool agenda_tz_valid(const char *s)
{
    return agenda_tz_index(s) >= 0;
}
