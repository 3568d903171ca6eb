/* HDF5 attribute helpers (see h5attr.h). HDF5 1.10 C API. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include "h5attr.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) {
        fputs("msap5_stellar_parameters: out of memory\n", stderr);
        exit(1);
    }
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void free_strings(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Read every element of a string attribute (vlen or fixed-length). */
static attr_rc read_strings(hid_t attr, hid_t ftype, hid_t space, char ***out, size_t *n) {
    hssize_t np = H5Sget_simple_extent_npoints(space);
    if (np < 0) return ATTR_UNREADABLE;
    size_t count = (size_t)np;
    char **v = calloc(count ? count : 1, sizeof *v);
    if (!v) return ATTR_UNREADABLE;
    attr_rc rc = ATTR_UNREADABLE;
    hid_t mtype = H5Tcopy(H5T_C_S1);
    if (mtype < 0) goto done;
    if (H5Tset_cset(mtype, H5Tget_cset(ftype)) < 0) goto done;
    if (H5Tis_variable_str(ftype) > 0) {
        char **raw = calloc(count ? count : 1, sizeof *raw);
        if (!raw) goto done;
        if (H5Tset_size(mtype, H5T_VARIABLE) < 0 || H5Aread(attr, mtype, raw) < 0) {
            free(raw);
            goto done;
        }
        for (size_t i = 0; i < count; i++)
            v[i] = dup_n(raw[i] ? raw[i] : "", raw[i] ? strlen(raw[i]) : 0);
        H5Dvlen_reclaim(mtype, space, H5P_DEFAULT, raw);
        free(raw);
    } else {
        size_t size = H5Tget_size(ftype);
        if (size == 0) goto done;
        char *raw = calloc(count ? count : 1, size);
        if (!raw) goto done;
        if (H5Tset_size(mtype, size) < 0 || H5Tset_strpad(mtype, H5Tget_strpad(ftype)) < 0 ||
            H5Aread(attr, mtype, raw) < 0) {
            free(raw);
            goto done;
        }
        for (size_t i = 0; i < count; i++) {
            const char *s = raw + i * size;
            size_t len = size;
            while (len > 0 && s[len - 1] == '\0') len--; /* numpy drops trailing NULs */
            v[i] = dup_n(s, strnlen(s, len));
        }
        free(raw);
    }
    *out = v;
    *n = count;
    v = NULL;
    rc = ATTR_OK;
done:
    if (mtype >= 0) H5Tclose(mtype);
    if (v) free_strings(v, count);
    return rc;
}

static attr_rc open_attr(hid_t obj, const char *name, hid_t *attr, hid_t *type, hid_t *space) {
    htri_t e = H5Aexists(obj, name);
    if (e == 0) return ATTR_MISSING;
    if (e < 0) return ATTR_UNREADABLE;
    *attr = H5Aopen(obj, name, H5P_DEFAULT);
    if (*attr < 0) return ATTR_UNREADABLE;
    *type = H5Aget_type(*attr);
    *space = H5Aget_space(*attr);
    if (*type < 0 || *space < 0) {
        if (*type >= 0) H5Tclose(*type);
        if (*space >= 0) H5Sclose(*space);
        H5Aclose(*attr);
        return ATTR_UNREADABLE;
    }
    return ATTR_OK;
}

static void close_attr(hid_t attr, hid_t type, hid_t space) {
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
}

attr_rc attr_get_strings(hid_t obj, const char *name, char ***out, size_t *n) {
    hid_t attr, type, space;
    attr_rc rc = open_attr(obj, name, &attr, &type, &space);
    if (rc != ATTR_OK) return rc;
    int rank = H5Sget_simple_extent_ndims(space);
    if (H5Tget_class(type) != H5T_STRING || rank < 0 || rank > 1 ||
        H5Sget_simple_extent_type(space) == H5S_NULL)
        rc = ATTR_WRONG_TYPE;
    else
        rc = read_strings(attr, type, space, out, n);
    close_attr(attr, type, space);
    return rc;
}

attr_rc attr_get_string(hid_t obj, const char *name, char **out) {
    hid_t attr, type, space;
    attr_rc rc = open_attr(obj, name, &attr, &type, &space);
    if (rc != ATTR_OK) return rc;
    char **v = NULL;
    size_t n = 0;
    if (H5Tget_class(type) != H5T_STRING || H5Sget_simple_extent_npoints(space) != 1 ||
        H5Sget_simple_extent_type(space) == H5S_NULL)
        rc = ATTR_WRONG_TYPE;
    else
        rc = read_strings(attr, type, space, &v, &n);
    close_attr(attr, type, space);
    if (rc == ATTR_OK) {
        *out = v[0];
        v[0] = NULL;
        free_strings(v, n);
    }
    return rc;
}

static const char *class_name(H5T_class_t c) {
    switch (c) {
    case H5T_STRING: return "a string";
    case H5T_ENUM: return "an enum (a boolean?)";
    case H5T_COMPOUND: return "a compound";
    case H5T_ARRAY: return "an array type";
    case H5T_VLEN: return "a variable-length sequence";
    case H5T_REFERENCE: return "a reference";
    case H5T_OPAQUE: return "opaque data";
    case H5T_BITFIELD: return "a bitfield";
    case H5T_TIME: return "a time";
    default: return "not a number";
    }
}

attr_rc attr_get_number(hid_t obj, const char *name, double *out, char *why, size_t why_len) {
    hid_t attr, type, space;
    attr_rc rc = open_attr(obj, name, &attr, &type, &space);
    if (rc != ATTR_OK) return rc;
    H5T_class_t cls = H5Tget_class(type);
    hssize_t np = H5Sget_simple_extent_npoints(space);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        snprintf(why, why_len, "%s", class_name(cls));
        rc = ATTR_WRONG_TYPE;
    } else if (H5Sget_simple_extent_type(space) == H5S_NULL) {
        snprintf(why, why_len, "empty");
        rc = ATTR_WRONG_TYPE;
    } else if (np != 1) {
        snprintf(why, why_len, "%lld values", (long long)np);
        rc = ATTR_WRONG_TYPE;
    } else if (H5Aread(attr, H5T_NATIVE_DOUBLE, out) < 0) {
        rc = ATTR_UNREADABLE;
    }
    close_attr(attr, type, space);
    return rc;
}

/* Create (replacing) an attribute of `type` over `space` and write `buf`. */
static int put(hid_t obj, const char *name, hid_t type, hid_t space, const void *buf) {
    if (H5Aexists(obj, name) > 0 && H5Adelete(obj, name) < 0) return -1;
    hid_t attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr < 0) return -1;
    int rc = H5Awrite(attr, type, buf) < 0 ? -1 : 0;
    if (H5Aclose(attr) < 0) rc = -1;
    return rc;
}

static hid_t vlen_utf8(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0) return -1;
    if (H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0 ||
        H5Tset_strpad(t, H5T_STR_NULLTERM) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

int attr_put_string(hid_t obj, const char *name, const char *value) {
    hid_t t = vlen_utf8(), s = H5Screate(H5S_SCALAR);
    int rc = (t < 0 || s < 0) ? -1 : put(obj, name, t, s, &value);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    return rc;
}

int attr_put_strings(hid_t obj, const char *name, char *const *values, size_t n) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t t = vlen_utf8(), s = H5Screate_simple(1, dims, NULL);
    const char *empty[1] = {""};
    int rc = (t < 0 || s < 0) ? -1 : put(obj, name, t, s, n ? (const void *)values : empty);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    return rc;
}

int attr_put_double(hid_t obj, const char *name, double value) {
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = s < 0 ? -1 : put(obj, name, H5T_IEEE_F64LE, s, &value);
    if (s >= 0) H5Sclose(s);
    return rc;
}

static char last_error[256];

static herr_t keep_innermost(unsigned n, const H5E_error2_t *err, void *data) {
    (void)data;
    if (n == 0 && err->desc && *err->desc) snprintf(last_error, sizeof last_error, "%s", err->desc);
    return 0;
}

const char *h5_last_error(void) {
    last_error[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, NULL);
    return last_error;
}
