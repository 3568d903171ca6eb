/* HDF5 attributes and datasets as the chunk contract uses them (see sf_contracts.h): strings
 * as h5py writes Python str (variable-length UTF-8), numbers as float64 or int64. HDF5 1.10 C
 * API. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include "sf_contracts.h"

#include <errno.h>
#include <lzf.h> /* liblzf-dev: -I/usr/include/liblzf (pkg-config liblzf) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_n(const char *s, size_t n) {
    char *d = sf_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void sf_free_strings(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Read every element of a string attribute (vlen or fixed-length). */
static sf_attr_rc read_strings(hid_t attr, hid_t ftype, hid_t space, char ***out, size_t *n) {
    hssize_t np = H5Sget_simple_extent_npoints(space);
    if (np < 0) return SF_ATTR_UNREADABLE;
    size_t count = (size_t)np;
    char **v = calloc(count ? count : 1, sizeof *v);
    if (!v) return SF_ATTR_UNREADABLE;
    sf_attr_rc rc = SF_ATTR_UNREADABLE;
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
    rc = SF_ATTR_OK;
done:
    if (mtype >= 0) H5Tclose(mtype);
    if (v) sf_free_strings(v, count);
    return rc;
}

static sf_attr_rc open_attr(hid_t obj, const char *name, hid_t *attr, hid_t *type, hid_t *space) {
    htri_t e = H5Aexists(obj, name);
    if (e == 0) return SF_ATTR_MISSING;
    if (e < 0) return SF_ATTR_UNREADABLE;
    *attr = H5Aopen(obj, name, H5P_DEFAULT);
    if (*attr < 0) return SF_ATTR_UNREADABLE;
    *type = H5Aget_type(*attr);
    *space = H5Aget_space(*attr);
    if (*type < 0 || *space < 0) {
        if (*type >= 0) H5Tclose(*type);
        if (*space >= 0) H5Sclose(*space);
        H5Aclose(*attr);
        return SF_ATTR_UNREADABLE;
    }
    return SF_ATTR_OK;
}

static void close_attr(hid_t attr, hid_t type, hid_t space) {
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(attr);
}

sf_attr_rc sf_attr_get_strings(hid_t obj, const char *name, char ***out, size_t *n) {
    hid_t attr, type, space;
    sf_attr_rc rc = open_attr(obj, name, &attr, &type, &space);
    if (rc != SF_ATTR_OK) return rc;
    int rank = H5Sget_simple_extent_ndims(space);
    if (H5Tget_class(type) != H5T_STRING || rank < 0 || rank > 1 ||
        H5Sget_simple_extent_type(space) == H5S_NULL)
        rc = SF_ATTR_WRONG_TYPE;
    else
        rc = read_strings(attr, type, space, out, n);
    close_attr(attr, type, space);
    return rc;
}

sf_attr_rc sf_attr_get_string(hid_t obj, const char *name, char **out) {
    hid_t attr, type, space;
    sf_attr_rc rc = open_attr(obj, name, &attr, &type, &space);
    if (rc != SF_ATTR_OK) return rc;
    char **v = NULL;
    size_t n = 0;
    if (H5Tget_class(type) != H5T_STRING || H5Sget_simple_extent_npoints(space) != 1 ||
        H5Sget_simple_extent_type(space) == H5S_NULL)
        rc = SF_ATTR_WRONG_TYPE;
    else
        rc = read_strings(attr, type, space, &v, &n);
    close_attr(attr, type, space);
    if (rc == SF_ATTR_OK) {
        *out = v[0];
        v[0] = NULL;
        sf_free_strings(v, n);
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

sf_attr_rc sf_attr_get_number(hid_t obj, const char *name, double *out, char *why, size_t why_len) {
    hid_t attr, type, space;
    sf_attr_rc rc = open_attr(obj, name, &attr, &type, &space);
    if (rc == SF_ATTR_UNREADABLE) snprintf(why, why_len, "%s", sf_h5_last_error());
    if (rc != SF_ATTR_OK) return rc;
    H5T_class_t cls = H5Tget_class(type);
    hssize_t np = H5Sget_simple_extent_npoints(space);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        snprintf(why, why_len, "%s", class_name(cls));
        rc = SF_ATTR_WRONG_TYPE;
    } else if (H5Sget_simple_extent_type(space) == H5S_NULL) {
        snprintf(why, why_len, "empty");
        rc = SF_ATTR_WRONG_TYPE;
    } else if (np != 1) {
        snprintf(why, why_len, "%lld values", (long long)np);
        rc = SF_ATTR_WRONG_TYPE;
    } else if (H5Aread(attr, H5T_NATIVE_DOUBLE, out) < 0) {
        snprintf(why, why_len, "%s", sf_h5_last_error()); /* before the next call resets it */
        rc = SF_ATTR_UNREADABLE;
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

int sf_attr_put_string(hid_t obj, const char *name, const char *value) {
    hid_t t = vlen_utf8(), s = H5Screate(H5S_SCALAR);
    int rc = (t < 0 || s < 0) ? -1 : put(obj, name, t, s, &value);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    return rc;
}

int sf_attr_put_strings(hid_t obj, const char *name, char *const *values, size_t n) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t t = vlen_utf8(), s = H5Screate_simple(1, dims, NULL);
    const char *empty[1] = {""};
    int rc = (t < 0 || s < 0) ? -1 : put(obj, name, t, s, n ? (const void *)values : empty);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    return rc;
}

static int put_scalar(hid_t obj, const char *name, hid_t type, const void *value) {
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = s < 0 ? -1 : put(obj, name, type, s, value);
    if (s >= 0) H5Sclose(s);
    return rc;
}

int sf_attr_put_double(hid_t obj, const char *name, double value) {
    return put_scalar(obj, name, H5T_IEEE_F64LE, &value);
}

int sf_attr_put_int(hid_t obj, const char *name, int64_t value) {
    return put_scalar(obj, name, H5T_STD_I64LE, &value);
}

/* ------------------------------------------------------------------ datasets */

/* Whether every link of `path` below `group` exists (H5Lexists fails on a missing parent). */
static int path_exists(hid_t group, const char *path) {
    size_t len = strlen(path);
    char *prefix = sf_xmalloc(len + 1);
    int ok = len > 0;
    for (size_t i = 0; ok && i <= len; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        memcpy(prefix, path, i);
        prefix[i] = '\0';
        ok = i > 0 && H5Lexists(group, prefix, H5P_DEFAULT) > 0;
    }
    free(prefix);
    return ok;
}

/* h5py's lzf filter, which the Python modules use for large datasets (chunk.write_dataset),
 * on Debian's liblzf: decompression only (this library writes deflate). Registered here as
 * h5py does; Debian's hdf5-plugin-lzf would be the plugin way, but it is built without liblzf
 * (bookworm: undefined symbol lzf_decompress). */
enum { LZF_FILTER = 32000 }; /* h5py's id, registered with The HDF Group */

static size_t lzf_filter(unsigned flags, size_t cd_nelmts, const unsigned cd_values[],
                         size_t nbytes, size_t *buf_size, void **buf) {
    if (!(flags & H5Z_FLAG_REVERSE)) return 0; /* no compression: HDF5 reports the failure */
    /* h5py stores the chunk's size in cd_values[2]; otherwise grow until it fits. */
    size_t out_size = cd_nelmts >= 3 && cd_values[2] ? cd_values[2] : *buf_size;
    for (;;) {
        void *out = malloc(out_size);
        if (!out) return 0;
        unsigned n = lzf_decompress(*buf, (unsigned)nbytes, out, (unsigned)out_size);
        if (n) {
            free(*buf);
            *buf = out;
            *buf_size = out_size;
            return n;
        }
        free(out);
        if (errno != E2BIG || out_size > ((size_t)1 << 31)) return 0;
        out_size += *buf_size;
    }
}

static const H5Z_class2_t LZF_CLASS = {H5Z_CLASS_T_VERS, (H5Z_filter_t)LZF_FILTER, 1, 1,
                                       "lzf (stellarflow contracts, liblzf)", NULL, NULL,
                                       lzf_filter};

int sf_register_lzf(void) {
    static int done;
    if (!done && H5Zregister(&LZF_CLASS) >= 0) done = 1;
    return done ? 0 : -1;
}

/* If the dataset is compressed with a filter this libhdf5 cannot load, say which in `why`. */
static void missing_filter(hid_t ds, char *why, size_t why_len) {
    hid_t dcpl = H5Dget_create_plist(ds);
    if (dcpl < 0) return;
    int n = H5Pget_nfilters(dcpl);
    for (int i = 0; i < n; i++) {
        unsigned flags, config;
        size_t nvalues = 0;
        char name[64] = "";
        H5Z_filter_t id = H5Pget_filter2(dcpl, (unsigned)i, &flags, &nvalues, NULL, sizeof name,
                                         name, &config);
        if (id < 0 || H5Zfilter_avail(id) > 0) continue;
        snprintf(why, why_len, "compressed with the HDF5 filter '%s' (id %d), which this "
                 "libhdf5 cannot load", name, (int)id);
        break;
    }
    H5Pclose(dcpl);
}

sf_attr_rc sf_read_doubles(hid_t group, const char *path, double **out, size_t *n, char *why,
                           size_t why_len) {
    sf_register_lzf();
    if (!path_exists(group, path)) return SF_ATTR_MISSING;
    hid_t obj = H5Oopen(group, path, H5P_DEFAULT);
    if (obj < 0) {
        snprintf(why, why_len, "%s", sf_h5_last_error());
        return SF_ATTR_UNREADABLE;
    }
    sf_attr_rc rc = SF_ATTR_UNREADABLE;
    hid_t type = -1, space = -1;
    if (H5Iget_type(obj) != H5I_DATASET) {
        snprintf(why, why_len, "not a dataset");
        rc = SF_ATTR_WRONG_TYPE;
        goto done;
    }
    type = H5Dget_type(obj);
    space = H5Dget_space(obj);
    if (type < 0 || space < 0) {
        snprintf(why, why_len, "%s", sf_h5_last_error());
        goto done;
    }
    H5T_class_t cls = H5Tget_class(type);
    if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
        snprintf(why, why_len, "%s", class_name(cls));
        rc = SF_ATTR_WRONG_TYPE;
        goto done;
    }
    hssize_t np = H5Sget_simple_extent_npoints(space);
    if (np < 0) {
        snprintf(why, why_len, "%s", sf_h5_last_error());
        goto done;
    }
    double *v = sf_xmalloc((size_t)np * sizeof *v);
    if (np > 0 && H5Dread(obj, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        snprintf(why, why_len, "%s", sf_h5_last_error());
        missing_filter(obj, why, why_len);
        free(v);
        goto done;
    }
    *out = v;
    *n = (size_t)np;
    rc = SF_ATTR_OK;
done:
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    H5Oclose(obj);
    return rc;
}

enum { COMPRESS_OVER = 4096, CHUNK_VALUES = 16384 };

int sf_write_doubles(hid_t group, const char *path, const double *data, size_t n,
                     const char *units) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = H5Screate_simple(1, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), dcpl = H5Pcreate(H5P_DATASET_CREATE), ds = -1;
    int rc = -1;
    if (space < 0 || lcpl < 0 || dcpl < 0) goto done;
    if (H5Pset_create_intermediate_group(lcpl, 1) < 0) goto done;
    /* Large datasets compressed, as chunk.write_dataset does (with lzf, which libhdf5 lacks). */
    if (n > COMPRESS_OVER && H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0) {
        hsize_t chunk[1] = {n < CHUNK_VALUES ? (hsize_t)n : CHUNK_VALUES};
        if (H5Pset_chunk(dcpl, 1, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
            H5Pset_deflate(dcpl, 1) < 0)
            goto done;
    }
    ds = H5Dcreate2(group, path, H5T_IEEE_F64LE, space, lcpl, dcpl, H5P_DEFAULT);
    if (ds < 0) goto done;
    if (n > 0 && H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        goto done;
    rc = sf_attr_put_string(ds, "units", units);
done:
    if (ds >= 0 && H5Dclose(ds) < 0) rc = -1;
    if (dcpl >= 0) H5Pclose(dcpl);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (space >= 0) H5Sclose(space);
    return rc;
}

/* ------------------------------------------------------------------ errors */

static char last_error[256];

static herr_t keep_innermost(unsigned n, const H5E_error2_t *err, void *data) {
    (void)data;
    if (n == 0 && err->desc && *err->desc) snprintf(last_error, sizeof last_error, "%s", err->desc);
    return 0;
}

const char *sf_h5_last_error(void) {
    last_error[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, NULL);
    return last_error;
}
