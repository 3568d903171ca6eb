/* stellarflow contracts library, C part: what a science module written in C needs to read and
 * write chunk files exactly as the Python part (stellarflow_contracts.chunk) does
 * (docs/contracts.md, section 5):
 *
 * - HDF5 attribute and dataset helpers, as h5py writes and reads them;
 * - opening and checking an input chunk file (contracts major version, /stars, chunk_id,
 *   star_ids);
 * - the output chunk file's root attrs with provenance (module, module_version,
 *   contracts_version, image, image_digest, runtime, host, created_utc);
 * - the per-star loop with failure isolation (run_chunk): a star failed upstream in any input
 *   is carried as failed with its error and cpu_s 0; a star whose callback fails gets
 *   status failed and a one-line error "<module>: <message>"; cpu_s per star is
 *   CLOCK_PROCESS_CPUTIME_ID (time.process_time);
 * - the summary JSON, byte for byte what chunk.summarise + json.dumps(indent=1,
 *   ensure_ascii=False) write for the same file (it is made by reading the output back);
 * - the command line of module_main: --help, --version, --debug (HDF5's error stack printed),
 *   --outdir, one --<input> FILE per input; usage errors in one line and exit 2, a bad input
 *   file in one line and exit 2, an output that cannot be written exit 1, SIGTERM exit 143.
 *
 * A module describes itself in an sf_module and calls sf_module_main from its main(). C11 on
 * the HDF5 1.10 C API (Debian's libhdf5-dev) and liblzf (liblzf-dev, for h5py's lzf
 * compression); link with -lhdf5 -llzf -lm. Every message goes to stderr in one line.
 *
 * The version is the Python library's (stellarflow_contracts.__version__): both must agree
 * (containers/contracts/README.md). */
#ifndef SF_CONTRACTS_H
#define SF_CONTRACTS_H

#include <hdf5.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SF_CONTRACTS_VERSION "1.3.0"
#define SF_CONTRACTS_MAJOR 1

/* ------------------------------------------------------------------ attributes */

typedef enum {
    SF_ATTR_OK = 0,
    SF_ATTR_MISSING,    /* no such attribute */
    SF_ATTR_WRONG_TYPE, /* there, but not what was asked for (see `why`) */
    SF_ATTR_UNREADABLE  /* HDF5 could not read it */
} sf_attr_rc;

/* Readers accept what h5py would: strings variable- or fixed-length, numbers of any integer or
 * floating-point type. */
/* A string attribute (one value); *out is malloc'ed. */
sf_attr_rc sf_attr_get_string(hid_t obj, const char *name, char **out);
/* A string attribute of rank 0 or 1 as an array of malloc'ed strings (free with
 * sf_free_strings). */
sf_attr_rc sf_attr_get_strings(hid_t obj, const char *name, char ***out, size_t *n);
void sf_free_strings(char **v, size_t n);
/* One number of any integer or floating-point type; on SF_ATTR_WRONG_TYPE, `why` says what it
 * is instead ("a string", "3 values", ...), on SF_ATTR_UNREADABLE what HDF5 said. */
sf_attr_rc sf_attr_get_number(hid_t obj, const char *name, double *out, char *why,
                              size_t why_len);

/* Writers, as h5py writes Python values: str as variable-length UTF-8, float as float64, int
 * as int64. 0 on success, -1 on an HDF5 error. An existing attribute is replaced. */
int sf_attr_put_string(hid_t obj, const char *name, const char *value);
int sf_attr_put_strings(hid_t obj, const char *name, char *const *values, size_t n);
int sf_attr_put_double(hid_t obj, const char *name, double value);
int sf_attr_put_int(hid_t obj, const char *name, int64_t value);

/* The innermost message of the current HDF5 error stack ("" if none), for one-line errors. */
const char *sf_h5_last_error(void);

/* ------------------------------------------------------------------ datasets */

/* A dataset below `group` (path relative to it, e.g. "prepared/flux") as float64, any rank
 * (flattened); *out is malloc'ed. SF_ATTR_MISSING if there is no such dataset, WRONG_TYPE
 * (with `why`) if it is not a numeric dataset, UNREADABLE with HDF5's reason in `why` (e.g. a
 * compression filter this libhdf5 cannot load). Reads h5py's lzf compression, which the Python
 * modules use for large datasets (sf_register_lzf, on Debian's liblzf). */
sf_attr_rc sf_read_doubles(hid_t group, const char *path, double **out, size_t *n, char *why,
                           size_t why_len);
/* Register h5py's lzf filter (decompression) with this process's libhdf5, once; 0 or -1.
 * sf_read_doubles does it; call it before reading such datasets with HDF5 directly. */
int sf_register_lzf(void);
/* A 1-D float64 dataset with its `units` attribute (every dataset of the contract has one),
 * intermediate groups created; compressed (deflate + shuffle) when over 4096 values, as
 * chunk.write_dataset does with lzf. 0 or -1 on an HDF5 error. */
int sf_write_doubles(hid_t group, const char *path, const double *data, size_t n,
                     const char *units);

/* ------------------------------------------------------------------ modules */

#define SF_MAX_INPUTS 16

/* One input chunk file of a module: the option --<name> FILE. */
typedef struct {
    const char *name;     /* stage it comes from, e.g. "prepared": --prepared FILE */
    const char *help;     /* for --help */
    int required;
} sf_input;

typedef enum {
    SF_STAR_OK = 0,          /* status ok */
    SF_STAR_FAILED,          /* status failed, error "<module>: <message>" */
    SF_STAR_NOT_MEASURABLE   /* status ok, no results, attr note "<module>: <message>" */
} sf_star_rc;

struct sf_module;

/* What the per-star callback gets. */
typedef struct {
    const struct sf_module *module;
    const char *id;            /* star id */
    hid_t in[SF_MAX_INPUTS];   /* the star's group in each input (module order), -1 if none */
    hid_t out;                 /* the star's output group /stars/<id> */
    char *message;             /* set by sf_fail / sf_not_measurable (the first call) */
    sf_star_rc verdict;        /* ... and which of the two it was */
} sf_star;

typedef struct sf_module {
    const char *name;        /* e.g. "msap5_stellar_parameters" (the program's name) */
    const char *version;     /* the module's version (module.yml) */
    const char *stage;       /* output stage: writes <chunk_id>.<stage>.h5 */
    const char *description; /* one line, for --help */
    const sf_input *inputs;
    int n_inputs;
    int primary;             /* index of the input whose chunk_id, star_ids, ... are used */
    /* Compute one star: read from star->in[], write into star->out; return SF_STAR_OK, or
     * sf_fail(...) / sf_not_measurable(...). Output groups and datasets of a star that fails
     * or is not measurable are removed, as in Python. */
    sf_star_rc (*process)(sf_star *star, void *user);
    /* Optional: after every star, before the summary (e.g. root attrs over the chunk). */
    void (*finish)(hid_t out_file, void *user);
    void *user;
} sf_module;

/* The star fails with this message (one line; the library prefixes "<module>: "). The first
 * call wins. Returns SF_STAR_FAILED, for `return sf_fail(star, ...)`. */
sf_star_rc sf_fail(sf_star *star, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The data cannot support this measurement: the star stays ok, with a note (chunk.py's
 * NotMeasurable). Returns SF_STAR_NOT_MEASURABLE. */
sf_star_rc sf_not_measurable(sf_star *star, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One number attr of the star in input `k`: NaN if the star has no group there or (unless
 * `required`) no such attr. A missing required attr or one that is not a number fails the star
 * ("<input>: star <id>: missing attribute 'teff'"); once the star has failed, NaN. */
double sf_star_number(sf_star *star, int k, const char *name, int required);

/* Writers for a star's (or the file's) output: on an HDF5 error the run stops with exit 1
 * (the output cannot be written), leaving no partial files. */
void sf_put_double(hid_t obj, const char *name, double value);
void sf_put_int(hid_t obj, const char *name, int64_t value);
void sf_put_string(hid_t obj, const char *name, const char *value);
void sf_put_doubles(hid_t group, const char *path, const double *data, size_t n,
                    const char *units);

/* Parse the command line, run the chunk and write its summary; returns the exit status
 * (0 done, some stars may have failed) or exits (2 usage or input error, 1 output error,
 * 143 on SIGTERM). */
int sf_module_main(const sf_module *module, int argc, char **argv);

/* Whether --debug was given (e.g. to print more about a failing star). */
int sf_debug(void);

/* ------------------------------------------------------------------ summary */

/* Write the summary JSON of a finished chunk file `h5_path` to `json_path`: what
 * chunk.summarise + json.dumps(indent=1, ensure_ascii=False) + "\n" write. 0, or -1 with
 * errno set (an HDF5 error reads as EIO). */
int sf_write_summary(const char *h5_path, const char *json_path);

/* ------------------------------------------------------------------ step profile */

/* Write <outdir>/<prefix>.profile.json, the step profile of stellarflow_contracts.profile
 * (record "stellarflow-step-profile" 1): module, versions, image, host, pid, process start and
 * end (UTC), wall, CPU (getrusage of the process and its waited-for children), max RSS,
 * /proc/self/io counters, exit status, the input files (option, name, size) and every file left
 * in outdir. sf_module_main calls it after the summary; 0, or -1 with errno set. */
int sf_write_profile(const struct sf_module *m, const char *outdir, const char *prefix,
                     const char *const *input_paths, int exit_status);

/* A JSON string as Python's json.dumps(ensure_ascii=False) writes it. */
void sf_json_string(FILE *f, const char *s);

/* ------------------------------------------------------------------ small utilities */

/* Abort with "<program>: out of memory" (exit 1) instead of returning NULL. */
void *sf_xmalloc(size_t n);
void *sf_xrealloc(void *p, size_t n);
char *sf_xstrdup(const char *s);
char *sf_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *sf_vxasprintf(const char *fmt, va_list ap);
/* Python's " ".join(text.split()): whitespace runs become one space, none at either end. */
char *sf_one_line(char *s);
/* CPU seconds of this process (time.process_time). */
double sf_cpu_seconds(void);

#endif
