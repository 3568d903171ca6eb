/* The chunk summary JSON (sf_write_summary, see sf_contracts.h): what
 * stellarflow_contracts.chunk.summarise writes, through json.dumps(indent=1,
 * ensure_ascii=False), for the same HDF5 file, byte for byte. It reads the finished file back,
 * as summarise does, so it holds whatever a module wrote.
 *
 * Per star, the attrs (except status and cpu_s) sorted by name, as summarise's _summary_value
 * makes them: strings as they are, integers as integers, floats to 4 significant digits (NaN,
 * inf: null), booleans as "True"/"False", 1-D arrays as lists of those, arrays of higher rank
 * as a list of Python's str() of each row; and the shape of every dataset below the star's
 * group. Attribute types no chunk file uses (compound, opaque, reference, empty) are written
 * as a short description, not as h5py would show them. */
#define _POSIX_C_SOURCE 200809L
#include "sf_contracts.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ numbers and strings */

/* Python's repr of a finite double: the shortest digits that read back to it (the correctly
 * rounded p-digit form for the smallest p that round-trips), in Python's layout: exponent
 * form below 1e-4 and from 1e16 on, else positional with at least ".0". */
static void py_repr(double v, char *out, size_t out_len) {
    if (isnan(v)) {
        snprintf(out, out_len, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(out, out_len, "%s", v > 0 ? "inf" : "-inf");
        return;
    }
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

/* float(f"{v:.4g}") printed as json.dumps prints a float (NaN and inf -> null, as summarise
 * makes them). `out` needs 32 bytes. */
static void json_number4(double v, char *out, size_t out_len) {
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

/* A JSON string as Python's json module writes it with ensure_ascii=False. */
void sf_json_string(FILE *f, const char *s) {
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

static void indent(FILE *f, int level) {
    for (int i = 0; i < level; i++) fputc(' ', f);
}

/* ------------------------------------------------------------------ attribute values */

typedef enum { V_FLOAT, V_INT, V_UINT, V_STRING, V_OTHER } vkind;

/* An attribute's values, flattened. */
typedef struct {
    vkind kind;
    int boolean; /* an enum h5py reads as numpy.bool_ (V_INT or V_UINT values) */
    int rank;
    hsize_t dims[H5S_MAX_RANK];
    size_t n;
    double *f;
    long long *i;
    unsigned long long *u;
    char **s;
    const char *other; /* V_OTHER: what it is */
} values_t;

static void free_values(values_t *v) {
    free(v->f);
    free(v->i);
    free(v->u);
    sf_free_strings(v->s, v->n);
}

/* An enum h5py reads as numpy.bool_: members FALSE and TRUE. */
static int is_bool_enum(hid_t type) {
    if (H5Tget_nmembers(type) != 2) return 0;
    int ok = 1;
    for (unsigned k = 0; k < 2; k++) {
        char *name = H5Tget_member_name(type, k);
        ok = ok && name && (strcmp(name, "FALSE") == 0 || strcmp(name, "TRUE") == 0);
        if (name) H5free_memory(name);
    }
    return ok;
}

/* Read an enum's values as their integers (the base type's, as h5py shows a non-bool enum). */
static int read_enum(hid_t attr, hid_t type, values_t *v) {
    hid_t base = H5Tget_super(type);
    if (base < 0) return -1;
    size_t size = H5Tget_size(base);
    int is_signed = H5Tget_sign(base) == H5T_SGN_2;
    hid_t mem = H5Tenum_create(is_signed ? H5T_NATIVE_LLONG : H5T_NATIVE_ULLONG);
    int rc = -1;
    if (mem < 0) goto done;
    /* The memory enum must have the file enum's members, with the values widened. */
    unsigned char raw[16];
    for (int k = 0; k < H5Tget_nmembers(type); k++) {
        char *name = H5Tget_member_name(type, (unsigned)k);
        if (!name || size > sizeof raw || H5Tget_member_value(type, (unsigned)k, raw) < 0) {
            if (name) H5free_memory(name);
            goto done;
        }
        long long wide = 0;
        if (H5Tconvert(base, is_signed ? H5T_NATIVE_LLONG : H5T_NATIVE_ULLONG, 1, raw, NULL,
                       H5P_DEFAULT) >= 0)
            memcpy(&wide, raw, sizeof wide);
        herr_t e = H5Tenum_insert(mem, name, &wide);
        H5free_memory(name);
        if (e < 0) goto done;
    }
    if (is_signed) {
        v->kind = V_INT;
        v->i = sf_xmalloc(v->n * sizeof *v->i);
        if (H5Aread(attr, mem, v->i) < 0) goto done;
    } else {
        v->kind = V_UINT;
        v->u = sf_xmalloc(v->n * sizeof *v->u);
        if (H5Aread(attr, mem, v->u) < 0) goto done;
    }
    rc = 0;
done:
    if (mem >= 0) H5Tclose(mem);
    H5Tclose(base);
    return rc;
}

static int read_values(hid_t obj, const char *name, values_t *v) {
    memset(v, 0, sizeof *v);
    hid_t attr = H5Aopen(obj, name, H5P_DEFAULT);
    if (attr < 0) return -1;
    hid_t type = H5Aget_type(attr), space = H5Aget_space(attr);
    int rc = -1;
    if (type < 0 || space < 0) goto done;
    if (H5Sget_simple_extent_type(space) == H5S_NULL) {
        v->kind = V_OTHER;
        v->other = "Empty";
        rc = 0;
        goto done;
    }
    v->rank = H5Sget_simple_extent_ndims(space);
    if (v->rank < 0 || H5Sget_simple_extent_dims(space, v->dims, NULL) < 0) goto done;
    hssize_t np = H5Sget_simple_extent_npoints(space);
    if (np < 0) goto done;
    v->n = (size_t)np;
    size_t alloc = v->n ? v->n : 1;
    switch (H5Tget_class(type)) {
    case H5T_FLOAT:
        v->kind = V_FLOAT;
        v->f = sf_xmalloc(alloc * sizeof *v->f);
        rc = v->n && H5Aread(attr, H5T_NATIVE_DOUBLE, v->f) < 0 ? -1 : 0;
        break;
    case H5T_INTEGER:
        if (H5Tget_sign(type) == H5T_SGN_2) {
            v->kind = V_INT;
            v->i = sf_xmalloc(alloc * sizeof *v->i);
            rc = v->n && H5Aread(attr, H5T_NATIVE_LLONG, v->i) < 0 ? -1 : 0;
        } else {
            v->kind = V_UINT;
            v->u = sf_xmalloc(alloc * sizeof *v->u);
            rc = v->n && H5Aread(attr, H5T_NATIVE_ULLONG, v->u) < 0 ? -1 : 0;
        }
        break;
    case H5T_ENUM:
        v->kind = V_INT;
        rc = v->n ? read_enum(attr, type, v) : 0;
        v->boolean = is_bool_enum(type);
        break;
    case H5T_STRING:
        if (v->rank > 1) {
            v->kind = V_OTHER;
            v->other = "an array of strings of rank > 1";
            rc = 0;
            break;
        }
        v->kind = V_STRING;
        {
            size_t n = 0;
            rc = sf_attr_get_strings(obj, name, &v->s, &n) == SF_ATTR_OK ? 0 : -1;
            v->n = n;
        }
        break;
    default:
        v->kind = V_OTHER;
        v->other = "a compound, opaque, reference or array type";
        rc = 0;
    }
done:
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    H5Aclose(attr);
    return rc;
}

/* One element as _summary_value makes it (JSON). */
static long long int_value(const values_t *v, size_t k) {
    return v->kind == V_INT ? v->i[k] : (long long)v->u[k];
}

static void json_element(FILE *f, const values_t *v, size_t k) {
    char num[40];
    if (v->boolean) {
        sf_json_string(f, int_value(v, k) ? "True" : "False");
        return;
    }
    switch (v->kind) {
    case V_FLOAT:
        json_number4(v->f[k], num, sizeof num);
        fputs(num, f);
        break;
    case V_INT: fprintf(f, "%lld", v->i[k]); break;
    case V_UINT: fprintf(f, "%llu", v->u[k]); break;
    case V_STRING: sf_json_string(f, v->s[k]); break;
    default: sf_json_string(f, v->other); break;
    }
}

/* Python's str() of one element inside a list (repr: full precision, nan, True). */
static void py_element(FILE *f, const values_t *v, size_t k) {
    char num[40];
    if (v->boolean) {
        fputs(int_value(v, k) ? "True" : "False", f);
        return;
    }
    switch (v->kind) {
    case V_FLOAT:
        py_repr(v->f[k], num, sizeof num);
        fputs(num, f);
        break;
    case V_INT: fprintf(f, "%lld", v->i[k]); break;
    case V_UINT: fprintf(f, "%llu", v->u[k]); break;
    default: fputs("?", f); break;
    }
}

/* str() of the nested list of dims[d:] starting at element *k. */
static void py_nested(FILE *f, const values_t *v, int d, size_t *k) {
    fputc('[', f);
    for (hsize_t j = 0; j < v->dims[d]; j++) {
        if (j) fputs(", ", f);
        if (d + 1 < v->rank)
            py_nested(f, v, d + 1, k);
        else
            py_element(f, v, (*k)++);
    }
    fputc(']', f);
}

/* A row of an array of rank > 1 as the JSON string of Python's str() of it. */
static void json_row(FILE *f, const values_t *v, size_t *k) {
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (!m) {
        fputs("\"?\"", f);
        return;
    }
    py_nested(m, v, 1, k);
    fclose(m);
    sf_json_string(f, text);
    free(text);
}

/* The attr's value at `level` (its key is already written). */
static void json_value(FILE *f, const values_t *v, int level) {
    if (v->kind == V_OTHER || v->rank == 0) {
        json_element(f, v, 0);
        return;
    }
    size_t rows = (size_t)v->dims[0];
    if (rows == 0) {
        fputs("[]", f);
        return;
    }
    fputs("[\n", f);
    size_t k = 0;
    for (size_t r = 0; r < rows; r++) {
        indent(f, level + 1);
        if (v->rank == 1)
            json_element(f, v, k++);
        else
            json_row(f, v, &k);
        fputs(r + 1 < rows ? ",\n" : "\n", f);
    }
    indent(f, level);
    fputc(']', f);
}

/* ------------------------------------------------------------------ names */

typedef struct {
    char **v;
    size_t n, cap;
} names_t;

static void names_add(names_t *l, const char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = sf_xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = sf_xstrdup(s);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static herr_t attr_name(hid_t loc, const char *name, const H5A_info_t *info, void *data) {
    (void)loc;
    (void)info;
    names_add(data, name);
    return 0;
}

/* Datasets below a group, with paths relative to it (h5py visititems: hard links only). */
typedef struct {
    names_t paths;
    hsize_t (*dims)[H5S_MAX_RANK];
    int *rank;
    const char *prefix;
} shapes_t;

static herr_t visit(hid_t g, const char *name, const H5L_info_t *info, void *data);

static herr_t visit_group(hid_t g, const char *prefix, shapes_t *sh) {
    const char *saved = sh->prefix;
    sh->prefix = prefix;
    hsize_t idx = 0;
    herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, visit, sh);
    sh->prefix = saved;
    return rc;
}

static herr_t visit(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    shapes_t *sh = data;
    if (info->type != H5L_TYPE_HARD) return 0;
    char *path = sf_xasprintf("%s%s%s", sh->prefix, *sh->prefix ? "/" : "", name);
    hid_t obj = H5Oopen(g, name, H5P_DEFAULT);
    herr_t rc = obj < 0 ? -1 : 0;
    if (obj >= 0 && H5Iget_type(obj) == H5I_DATASET) {
        hid_t space = H5Dget_space(obj);
        size_t k = sh->paths.n;
        names_add(&sh->paths, path);
        sh->dims = sf_xrealloc(sh->dims, sh->paths.cap * sizeof *sh->dims);
        sh->rank = sf_xrealloc(sh->rank, sh->paths.cap * sizeof *sh->rank);
        sh->rank[k] = space < 0 ? -1 : H5Sget_simple_extent_ndims(space);
        if (sh->rank[k] < 0 || H5Sget_simple_extent_dims(space, sh->dims[k], NULL) < 0) rc = -1;
        if (space >= 0) H5Sclose(space);
    } else if (obj >= 0 && H5Iget_type(obj) == H5I_GROUP) {
        rc = visit_group(obj, path, sh);
    }
    if (obj >= 0) H5Oclose(obj);
    free(path);
    return rc;
}

/* ------------------------------------------------------------------ the summary */

/* A root or star attr as summarise's attr_str reads it: str(value), "" (or `dflt`) if absent. */
static char *attr_text(hid_t obj, const char *name, const char *dflt) {
    char *v = NULL;
    sf_attr_rc rc = sf_attr_get_string(obj, name, &v);
    if (rc == SF_ATTR_OK) return v;
    if (rc == SF_ATTR_MISSING) return sf_xstrdup(dflt);
    values_t val;
    memset(&val, 0, sizeof val);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    if (m && read_values(obj, name, &val) == 0 && val.rank == 0 && val.kind != V_OTHER)
        py_element(m, &val, 0); /* str() of a numpy scalar is its repr */
    else if (m)
        fputs("?", m);
    free_values(&val);
    if (m) fclose(m);
    return text ? text : sf_xstrdup("?");
}

typedef struct {
    char *name;
    size_t count;
} count_t;

/* Write one star; -1 on an HDF5 error. */
static int write_star(FILE *f, hid_t stars, const char *sid, count_t **counts, size_t *n_counts) {
    hid_t g = H5Gopen2(stars, sid, H5P_DEFAULT);
    if (g < 0) return -1;
    int rc = -1;
    names_t attrs = {0};
    shapes_t sh = {{0}, NULL, NULL, ""};
    char *status = attr_text(g, "status", "ok");
    size_t c;
    for (c = 0; c < *n_counts && strcmp((*counts)[c].name, status) != 0; c++) {
    }
    if (c == *n_counts) {
        *counts = sf_xrealloc(*counts, (c + 1) * sizeof **counts);
        (*counts)[c] = (count_t){sf_xstrdup(status), 0};
        (*n_counts)++;
    }
    (*counts)[c].count++;

    hsize_t idx = 0;
    if (H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_name, &attrs) < 0) goto done;
    qsort(attrs.v, attrs.n, sizeof *attrs.v, cmp_str);
    if (visit_group(g, "", &sh) < 0) goto done;

    indent(f, 2);
    sf_json_string(f, sid);
    fputs(": {\n   \"status\": ", f);
    sf_json_string(f, status);
    fputs(",\n   \"attrs\": {", f);
    int first = 1;
    for (size_t i = 0; i < attrs.n; i++) {
        if (strcmp(attrs.v[i], "status") == 0 || strcmp(attrs.v[i], "cpu_s") == 0) continue;
        values_t v;
        if (read_values(g, attrs.v[i], &v) < 0) {
            free_values(&v);
            goto done;
        }
        fputs(first ? "\n" : ",\n", f);
        first = 0;
        indent(f, 4);
        sf_json_string(f, attrs.v[i]);
        fputs(": ", f);
        json_value(f, &v, 4);
        free_values(&v);
    }
    if (!first) {
        fputc('\n', f);
        indent(f, 3);
    }
    fputc('}', f);
    if (sh.paths.n) {
        /* Sort the paths, keeping each one's shape. */
        size_t *order = sf_xmalloc(sh.paths.n * sizeof *order);
        for (size_t i = 0; i < sh.paths.n; i++) order[i] = i;
        for (size_t i = 1; i < sh.paths.n; i++) /* insertion sort: a few datasets */
            for (size_t j = i; j > 0 && strcmp(sh.paths.v[order[j - 1]], sh.paths.v[order[j]]) > 0;
                 j--) {
                size_t t = order[j];
                order[j] = order[j - 1];
                order[j - 1] = t;
            }
        fputs(",\n   \"datasets\": {\n", f);
        for (size_t i = 0; i < sh.paths.n; i++) {
            size_t k = order[i];
            indent(f, 4);
            sf_json_string(f, sh.paths.v[k]);
            if (sh.rank[k] == 0) {
                fputs(": []", f);
            } else {
                fputs(": [\n", f);
                for (int d = 0; d < sh.rank[k]; d++) {
                    indent(f, 5);
                    fprintf(f, "%llu%s", (unsigned long long)sh.dims[k][d],
                            d + 1 < sh.rank[k] ? ",\n" : "\n");
                }
                indent(f, 4);
                fputc(']', f);
            }
            fputs(i + 1 < sh.paths.n ? ",\n" : "\n", f);
        }
        indent(f, 3);
        fputc('}', f);
        free(order);
    }
    fputs("\n  }", f);
    rc = 0;
done:
    free(status);
    sf_free_strings(attrs.v, attrs.n);
    sf_free_strings(sh.paths.v, sh.paths.n);
    free(sh.dims);
    free(sh.rank);
    H5Gclose(g);
    return rc;
}

static herr_t group_name(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    names_add(data, name);
    return 0;
}

int sf_write_summary(const char *h5_path, const char *json_path) {
    hid_t file = H5Fopen(h5_path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        errno = EIO;
        return -1;
    }
    int err = 0;
    FILE *f = NULL;
    hid_t stars = H5Gopen2(file, "stars", H5P_DEFAULT);
    char **ids = NULL;
    size_t n = 0;
    count_t *counts = NULL;
    size_t n_counts = 3;
    char *head[4] = {NULL, NULL, NULL, NULL};
    static const char *const HEAD[4] = {"chunk_id", "stage", "module", "module_version"};
    if (stars < 0) {
        err = EIO;
        goto done;
    }
    sf_attr_rc rc = sf_attr_get_strings(file, "star_ids", &ids, &n);
    if (rc == SF_ATTR_MISSING) { /* summarise's star_ids: the groups by name */
        names_t groups = {0};
        hsize_t idx = 0;
        if (H5Literate(stars, H5_INDEX_NAME, H5_ITER_INC, &idx, group_name, &groups) < 0) {
            sf_free_strings(groups.v, groups.n);
            err = EIO;
            goto done;
        }
        ids = groups.v;
        n = groups.n;
    } else if (rc != SF_ATTR_OK) {
        err = EIO;
        goto done;
    }
    f = fopen(json_path, "w");
    if (!f) {
        err = errno;
        goto done;
    }
    fputs("{\n", f);
    for (int k = 0; k < 4; k++) {
        head[k] = attr_text(file, HEAD[k], "");
        fprintf(f, " \"%s\": ", HEAD[k]);
        sf_json_string(f, head[k]);
        fputs(",\n", f);
    }
    /* The star entries go to memory first: the counts come before them. */
    char *body = NULL;
    size_t body_len = 0;
    FILE *m = open_memstream(&body, &body_len);
    if (!m) {
        err = errno;
        goto done;
    }
    counts = sf_xmalloc(3 * sizeof *counts);
    counts[0] = (count_t){sf_xstrdup("total"), 0};
    counts[1] = (count_t){sf_xstrdup("ok"), 0};
    counts[2] = (count_t){sf_xstrdup("failed"), 0};
    for (size_t i = 0; i < n && !err; i++) {
        fputs(i ? ",\n" : "\n", m);
        counts[0].count++;
        if (write_star(m, stars, ids[i], &counts, &n_counts) < 0) err = EIO;
    }
    fclose(m);
    if (!err) {
        fputs(" \"stars\": {\n", f);
        for (size_t c = 0; c < n_counts; c++) {
            fputs("  ", f);
            sf_json_string(f, counts[c].name);
            fprintf(f, ": %zu%s", counts[c].count, c + 1 < n_counts ? ",\n" : "\n");
        }
        fputs(" },\n \"star\": {", f);
        fwrite(body, 1, body_len, f);
        fputs(n ? "\n }\n}\n" : "}\n}\n", f);
    }
    free(body);
    if (!err && ferror(f)) err = errno ? errno : EIO;
done:
    if (f && fclose(f) != 0 && !err) err = errno;
    for (int k = 0; k < 4; k++) free(head[k]);
    if (counts)
        for (size_t c = 0; c < n_counts; c++) free(counts[c].name);
    free(counts);
    sf_free_strings(ids, n);
    if (stars >= 0) H5Gclose(stars);
    H5Fclose(file);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}
