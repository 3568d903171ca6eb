/* The chunk summary JSON (see summary.h). */
#include "summary.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const RESULT_NAMES[N_RESULTS] = {
    "teff", "radius_rsun", "radius_err_rsun", "mass_msun", "mass_err_msun",
    "age_gyr", "age_err_gyr", "bv"};

/* Python's repr of a finite double: the shortest digits that read back to it (the correctly
 * rounded p-digit form for the smallest p that round-trips), in Python's layout: exponent
 * form below 1e-4 and from 1e16 on, else positional with at least ".0". */
static void py_repr(double v, char *out, size_t out_len) {
    char buf[40], digits[20];
    int p;
    for (p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    /* buf: [-]d[.ddd]e(+|-)XX */
    const char *s = buf;
    int neg = (*s == '-');
    if (neg) s++;
    size_t nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') digits[nd++] = *s;
    int exp10 = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    int decpt = exp10 + 1; /* v = 0.DIGITS * 10^decpt */
    char *o = out;
    size_t left = out_len;
#define EMIT(...)                                             \
    do {                                                      \
        int k_ = snprintf(o, left, __VA_ARGS__);              \
        if (k_ < 0 || (size_t)k_ >= left) return;             \
        o += k_;                                              \
        left -= (size_t)k_;                                   \
    } while (0)
    if (neg) EMIT("-");
    if (v == 0.0) {
        EMIT("0.0");
    } else if (decpt <= -4 || decpt > 16) {
        EMIT("%c", digits[0]);
        if (nd > 1) EMIT(".%s", digits + 1);
        EMIT("e%c%02d", exp10 < 0 ? '-' : '+', abs(exp10));
    } else if (decpt <= 0) {
        EMIT("0.%.*s%s", -decpt, "0000", digits);
    } else if ((size_t)decpt < nd) {
        EMIT("%.*s.%s", decpt, digits, digits + decpt);
    } else {
        EMIT("%s%.*s.0", digits, (int)((size_t)decpt - nd), "0000000000000000");
    }
#undef EMIT
}

void json_number4(double v, char *out, size_t out_len) {
    if (!isfinite(v)) {
        snprintf(out, out_len, "null");
        return;
    }
    char buf[40];
    snprintf(buf, sizeof buf, "%.3e", v); /* the same correctly rounded value as "%.4g" */
    double r = strtod(buf, NULL);
    if (isinf(r)) /* rounding overflowed, as float("1.798e+308") does; json writes Infinity */
        snprintf(out, out_len, "%s", r > 0 ? "Infinity" : "-Infinity");
    else
        py_repr(r, out, out_len);
}

/* JSON string as Python's json module writes it with ensure_ascii=False. */
void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", *p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

typedef struct {
    const char *name;
    const char *str; /* NULL for a number */
    double num;
} entry_t;

static int by_name(const void *a, const void *b) {
    return strcmp(((const entry_t *)a)->name, ((const entry_t *)b)->name);
}

static void write_star(FILE *f, const star_result_t *st) {
    entry_t e[N_RESULTS + 2];
    size_t n = 0;
    e[n++] = (entry_t){"error", st->error, 0.0};
    if (st->ok) {
        for (size_t i = 0; i < N_RESULTS; i++) e[n++] = (entry_t){RESULT_NAMES[i], NULL, st->values[i]};
        e[n++] = (entry_t){"parameters_method", st->method, 0.0};
    }
    qsort(e, n, sizeof e[0], by_name); /* summarise sorts the attrs by name */
    fputs("  ", f);
    json_string(f, st->id);
    fputs(": {\n   \"status\": ", f);
    json_string(f, st->ok ? "ok" : "failed");
    fputs(",\n   \"attrs\": {\n", f);
    for (size_t i = 0; i < n; i++) {
        fputs("    ", f);
        json_string(f, e[i].name);
        fputs(": ", f);
        if (e[i].str) {
            json_string(f, e[i].str);
        } else {
            char num[40];
            json_number4(e[i].num, num, sizeof num);
            fputs(num, f);
        }
        fputs(i + 1 < n ? ",\n" : "\n", f);
    }
    fputs("   }\n  }", f);
}

int write_summary(const char *path, const char *chunk_id, const char *stage, const char *module,
                  const char *version, const star_result_t *stars, size_t n) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) ok += stars[i].ok ? 1 : 0;
    fputs("{\n \"chunk_id\": ", f);
    json_string(f, chunk_id);
    fputs(",\n \"stage\": ", f);
    json_string(f, stage);
    fputs(",\n \"module\": ", f);
    json_string(f, module);
    fputs(",\n \"module_version\": ", f);
    json_string(f, version);
    fprintf(f, ",\n \"stars\": {\n  \"total\": %zu,\n  \"ok\": %zu,\n  \"failed\": %zu\n },\n",
            n, ok, n - ok);
    fputs(" \"star\": {", f);
    for (size_t i = 0; i < n; i++) {
        fputs(i ? ",\n" : "\n", f);
        write_star(f, &stars[i]);
    }
    fputs(n ? "\n }\n}\n" : "}\n}\n", f);
    int err = ferror(f) ? (errno ? errno : EIO) : 0;
    if (fclose(f) != 0 && !err) err = errno;
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}
