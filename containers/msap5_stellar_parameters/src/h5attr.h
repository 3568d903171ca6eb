/* HDF5 attributes as the chunk contract uses them (docs/contracts.md): strings as h5py writes
 * Python str (variable-length UTF-8), numbers as float64. Reading also accepts fixed-length
 * strings and any integer or float type, as h5py would. */
#ifndef MSAP5_H5ATTR_H
#define MSAP5_H5ATTR_H

#include <hdf5.h>
#include <stddef.h>

typedef enum {
    ATTR_OK = 0,
    ATTR_MISSING,    /* no such attribute */
    ATTR_WRONG_TYPE, /* there, but not what was asked for (see `why`) */
    ATTR_UNREADABLE  /* HDF5 could not read it */
} attr_rc;

/* A string attribute (one value); *out is malloc'ed. */
attr_rc attr_get_string(hid_t obj, const char *name, char **out);
/* A string attribute of rank 0 or 1 as an array of malloc'ed strings (free with free_strings). */
attr_rc attr_get_strings(hid_t obj, const char *name, char ***out, size_t *n);
void free_strings(char **v, size_t n);
/* One number of any integer or floating-point type; on ATTR_WRONG_TYPE, `why` says what it is
 * instead ("a string", "3 values", ...). */
attr_rc attr_get_number(hid_t obj, const char *name, double *out, char *why, size_t why_len);

/* Writers: 0 on success, -1 on an HDF5 error. Existing attributes are replaced. */
int attr_put_string(hid_t obj, const char *name, const char *value);
int attr_put_strings(hid_t obj, const char *name, char *const *values, size_t n);
int attr_put_double(hid_t obj, const char *name, double value);

/* The innermost message of the current HDF5 error stack ("" if none), for one-line errors. */
const char *h5_last_error(void);

#endif
