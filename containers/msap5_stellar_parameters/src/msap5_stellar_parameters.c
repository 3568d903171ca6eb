/* msap5_stellar_parameters: MSAP5 stellar radius, mass and gyrochronology age for one chunk.
 *
 * Reads the chunk files of the stages prepared (MSAP1), rotation (MSAP4) and, when MSAP3 ran,
 * seismology; writes <outdir>/<chunk_id>.parameters.h5 and its summary JSON by the stellarflow
 * chunk contract (docs/contracts.md, stellarflow_contracts/specs/chunk-parameters.json), as
 * stellarflow_contracts.chunk.run_chunk does for the Python modules: per-star failure isolation,
 * upstream failures carried, provenance root attrs, CPU seconds per star.
 *
 * Exit status: 0 done (some stars may have failed: see their status), 2 bad usage or input
 * file (one line on stderr), 1 the output could not be written, 143 on SIGTERM. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h5attr.h"
#include "physics.h"
#include "summary.h"

#define MODULE "msap5_stellar_parameters"
#define VERSION "1.0.0"
#define STAGE "parameters"
#define CONTRACTS_VERSION "1.0.0"
#define CONTRACT_MAJOR "1"

static int debug;

/* ------------------------------------------------------------------ small utilities */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs(MODULE ": out of memory\n", stderr);
        exit(1);
    }
    return p;
}

static char *xstrdup(const char *s) { return strcpy(xmalloc(strlen(s) + 1), s); }

static char *xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = xmalloc((size_t)(n < 0 ? 0 : n) + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Error text in one line (newlines and tabs of upstream text become spaces). */
static char *one_line(char *s) {
    for (char *p = s; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
    return s;
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ command line */

static const char USAGE[] =
    "usage: " MODULE " [-h] [--version] [--debug] [--outdir OUTDIR] --prepared PREPARED\n"
    "                                --rotation ROTATION [--seismology SEISMOLOGY]\n";

static const char HELP[] =
    "\n"
    "MSAP5: stellar radius, mass and gyrochronology age\n"
    "\n"
    "options:\n"
    "  -h, --help            show this help message and exit\n"
    "  --version             show program's version number and exit\n"
    "  --debug               show tracebacks and debug logs\n"
    "  --outdir OUTDIR       where to write outputs\n"
    "  --prepared PREPARED   chunk file from MSAP1\n"
    "  --rotation ROTATION   chunk file from MSAP4\n"
    "  --seismology SEISMOLOGY\n"
    "                        chunk file from MSAP3 (absent if skipped)\n";

typedef struct {
    const char *prepared, *rotation, *seismology, *outdir;
} args_t;

static _Noreturn void usage_error(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: error: %s (see --help)\n", MODULE, one_line(msg));
    exit(2);
}

enum { OPT_HELP, OPT_VERSION, OPT_DEBUG, OPT_OUTDIR, OPT_PREPARED, OPT_ROTATION, OPT_SEISMOLOGY };
static const struct {
    const char *name;
    int takes_value;
} OPTIONS[] = {{"--help", 0},     {"--version", 0},  {"--debug", 0},     {"--outdir", 1},
               {"--prepared", 1}, {"--rotation", 1}, {"--seismology", 1}};
enum { N_OPTIONS = sizeof OPTIONS / sizeof OPTIONS[0] };

/* argparse's rules, as the Python modules' OneLineParser: long options, --opt=value, unique
 * prefixes, the last repeat wins, errors in one line and exit 2. */
static args_t parse_args(int argc, char **argv) {
    args_t a = {NULL, NULL, NULL, "."};
    const char **slot[N_OPTIONS] = {NULL, NULL, NULL, &a.outdir, &a.prepared, &a.rotation,
                                    &a.seismology};
    char unknown[1024] = "";
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_positional || arg[0] != '-' || arg[1] == '\0') {
            size_t len = strlen(unknown);
            snprintf(unknown + len, sizeof unknown - len, "%s%s", len ? " " : "", arg);
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(arg, "-h") == 0) arg = "--help";
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        int match = -1, matches = 0;
        for (int k = 0; k < N_OPTIONS; k++) {
            if (strlen(OPTIONS[k].name) == len && strncmp(OPTIONS[k].name, arg, len) == 0) {
                match = k;
                matches = 1;
                break;
            }
            if (len > 2 && strncmp(OPTIONS[k].name, arg, len) == 0) {
                match = k;
                matches++;
            }
        }
        if (matches > 1) usage_error("ambiguous option: %.*s", (int)len, arg);
        if (match < 0) {
            size_t ul = strlen(unknown);
            snprintf(unknown + ul, sizeof unknown - ul, "%s%s", ul ? " " : "", arg);
            continue;
        }
        const char *name = OPTIONS[match].name;
        if (!OPTIONS[match].takes_value) {
            if (eq) usage_error("argument %s: ignored explicit argument '%s'", name, eq + 1);
            if (match == OPT_HELP) {
                fputs(USAGE, stdout);
                fputs(HELP, stdout);
                exit(0);
            }
            if (match == OPT_VERSION) {
                puts(MODULE " " VERSION);
                exit(0);
            }
            debug = 1;
            continue;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc && !(argv[i + 1][0] == '-' && argv[i + 1][1] != '\0')) {
            value = argv[++i];
        } else {
            usage_error("argument %s: expected one argument", name);
        }
        *slot[match] = value;
    }
    if (!a.prepared || !a.rotation)
        usage_error("the following arguments are required: %s%s%s",
                    a.prepared ? "" : "--prepared", (!a.prepared && !a.rotation) ? ", " : "",
                    a.rotation ? "" : "--rotation");
    if (unknown[0]) usage_error("unrecognized arguments: %s", unknown);
    return a;
}

/* ------------------------------------------------------------------ input chunk files */

typedef struct {
    const char *role; /* prepared, rotation, seismology */
    const char *path;
    hid_t file, stars;
} input_t;

static _Noreturn void input_error(const char *path, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s: %s\n", MODULE, path, one_line(msg));
    exit(2);
}

/* Open a chunk file: an HDF5 file with a /stars group, a chunk_id and a contracts_version of
 * this major version (open_chunk of stellarflow_contracts.chunk). */
static void open_chunk(input_t *in) {
    struct stat st;
    if (stat(in->path, &st) != 0)
        input_error(in->path, "unreadable chunk HDF5 (%s)", strerror(errno));
    if (S_ISDIR(st.st_mode)) input_error(in->path, "unreadable chunk HDF5 (a directory)");
    in->file = H5Fopen(in->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (in->file < 0) {
        const char *why = h5_last_error();
        if (access(in->path, R_OK) != 0) why = strerror(errno);
        input_error(in->path, "unreadable chunk HDF5 (%s)", *why ? why : "HDF5 cannot open it");
    }
    in->stars = -1;
    if (H5Lexists(in->file, "stars", H5P_DEFAULT) > 0) {
        H5O_info_t info;
        if (H5Oget_info_by_name(in->file, "stars", &info, H5P_DEFAULT) >= 0 &&
            info.type == H5O_TYPE_GROUP)
            in->stars = H5Gopen2(in->file, "stars", H5P_DEFAULT);
    }
    if (in->stars < 0 || H5Aexists(in->file, "chunk_id") <= 0)
        input_error(in->path, "not a stellarflow chunk file (no /stars or chunk_id)");
    char *written = NULL;
    attr_rc rc = attr_get_string(in->file, "contracts_version", &written);
    if (rc == ATTR_WRONG_TYPE || rc == ATTR_UNREADABLE)
        input_error(in->path, "root attribute contracts_version is not a string");
    if (rc == ATTR_OK) {
        size_t major = strcspn(written, ".");
        if (major != strlen(CONTRACT_MAJOR) || strncmp(written, CONTRACT_MAJOR, major) != 0)
            input_error(in->path, "written with contracts %s, this module reads %s.x", written,
                        CONTRACT_MAJOR);
        free(written);
    }
}

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    char ***names = data;
    size_t n = 0;
    while ((*names)[n]) n++;
    *names = realloc(*names, (n + 2) * sizeof **names);
    if (!*names) return -1;
    (*names)[n] = xstrdup(name);
    (*names)[n + 1] = NULL;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The chunk's star ids in order: root attr star_ids, else the groups under /stars by name. */
static char **read_star_ids(const input_t *in, size_t *n) {
    char **ids = NULL;
    attr_rc rc = attr_get_strings(in->file, "star_ids", &ids, n);
    if (rc == ATTR_WRONG_TYPE || rc == ATTR_UNREADABLE)
        input_error(in->path, "root attribute star_ids is not an array of strings");
    if (rc == ATTR_MISSING) {
        ids = xmalloc(sizeof *ids);
        ids[0] = NULL;
        hsize_t idx = 0;
        if (H5Literate(in->stars, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, &ids) < 0)
            input_error(in->path, "cannot list the groups under /stars");
        for (*n = 0; ids[*n]; (*n)++) {
        }
    }
    /* Each id names a group /stars/<id> of the output: refuse what cannot be one. */
    char **sorted = xmalloc(*n * sizeof *sorted);
    for (size_t i = 0; i < *n; i++) {
        if (!ids[i][0] || strchr(ids[i], '/') || strcmp(ids[i], ".") == 0)
            input_error(in->path, "star id '%s' in star_ids cannot name a group", ids[i]);
        sorted[i] = ids[i];
    }
    qsort(sorted, *n, sizeof *sorted, cmp_str);
    for (size_t i = 1; i < *n; i++)
        if (strcmp(sorted[i - 1], sorted[i]) == 0)
            input_error(in->path, "star id '%s' appears twice in star_ids", sorted[i]);
    free(sorted);
    return ids;
}

/* A root attr as a string ("" if absent). */
static char *root_string(const input_t *in, const char *name) {
    char *v = NULL;
    attr_rc rc = attr_get_string(in->file, name, &v);
    if (rc == ATTR_MISSING) return xstrdup("");
    if (rc != ATTR_OK) input_error(in->path, "root attribute %s is not a string", name);
    return v;
}

/* ------------------------------------------------------------------ output, signals */

static char out_h5[4096], out_json[4096];
static volatile sig_atomic_t writing;

static void on_sigterm(int sig) {
    /* As PID 1 of a container a process without a handler ignores SIGTERM: a runner's time
     * limit could not stop it. Leave no half-written chunk file behind. */
    if (writing) {
        unlink(out_h5);
        unlink(out_json);
    }
    _exit(128 + sig);
}

static _Noreturn void output_error(const char *path, const char *what) {
    fprintf(stderr, "%s: %s: cannot write (%s)\n", MODULE, path, what);
    unlink(out_h5);
    unlink(out_json);
    exit(1);
}

static void put_string(hid_t obj, const char *name, const char *value) {
    if (attr_put_string(obj, name, value) < 0) output_error(out_h5, h5_last_error());
}

static void put_double(hid_t obj, const char *name, double value) {
    if (attr_put_double(obj, name, value) < 0) output_error(out_h5, h5_last_error());
}

/* ------------------------------------------------------------------ one star */

enum { IN_PREPARED, IN_ROTATION, IN_SEISMOLOGY, N_INPUTS };

/* The star's group in each input (-1 where the input has none or was not given). */
static void star_groups(const input_t *inputs, const char *sid, hid_t groups[N_INPUTS]) {
    for (int k = 0; k < N_INPUTS; k++) {
        groups[k] = -1;
        if (!inputs[k].path) continue;
        if (H5Lexists(inputs[k].stars, sid, H5P_DEFAULT) > 0)
            groups[k] = H5Oopen(inputs[k].stars, sid, H5P_DEFAULT);
    }
}

/* The error of the first input (in the order prepared, rotation, seismology) where the star
 * failed, or NULL. */
static char *upstream_error(const hid_t groups[N_INPUTS]) {
    for (int k = 0; k < N_INPUTS; k++) {
        char *status = NULL;
        if (groups[k] < 0 || attr_get_string(groups[k], "status", &status) != ATTR_OK) continue;
        int failed = strcmp(status, "failed") == 0;
        free(status);
        if (!failed) continue;
        char *error = NULL;
        attr_rc rc = attr_get_string(groups[k], "error", &error);
        if (rc == ATTR_OK) return error; /* the same error, unchanged */
        return xstrdup(rc == ATTR_MISSING ? "" : "(upstream error attribute is not a string)");
    }
    return NULL;
}

/* One input number of a star: NaN if the group or attribute is absent, unless `required`.
 * On a problem, *error gets the star's one-line error. */
static double star_number(hid_t g, const char *role, const char *sid, const char *name,
                          int required, char **error) {
    double v = NAN;
    if (*error) return v;
    if (g < 0) {
        if (required) *error = xasprintf("%s: %s: star %s: no group /stars/%s", MODULE, role, sid, sid);
        return v;
    }
    char why[128] = "";
    switch (attr_get_number(g, name, &v, why, sizeof why)) {
    case ATTR_OK: return v;
    case ATTR_MISSING:
        if (required)
            *error = xasprintf("%s: %s: star %s: missing attribute '%s'", MODULE, role, sid, name);
        return NAN;
    case ATTR_WRONG_TYPE:
        *error = xasprintf("%s: %s: star %s: attribute '%s' is not a number (%s)", MODULE, role,
                           sid, name, why);
        return NAN;
    default:
        *error = xasprintf("%s: %s: star %s: attribute '%s' is unreadable (%s)", MODULE, role,
                           sid, name, h5_last_error());
        return NAN;
    }
}

/* Derive the star's parameters; on success write them into `out` (the star's output group). */
static void process_star(const hid_t groups[N_INPUTS], const char *sid, hid_t out,
                         star_result_t *res) {
    char *err = NULL;
    hid_t prep = groups[IN_PREPARED], rot = groups[IN_ROTATION], seis = groups[IN_SEISMOLOGY];
    double teff = star_number(prep, "prepared", sid, "teff", 1, &err);
    double logg = star_number(prep, "prepared", sid, "logg", 1, &err);
    double feh = star_number(prep, "prepared", sid, "feh", 1, &err);
    double numax = star_number(seis, "seismology", sid, "numax_uhz", 0, &err);
    double numax_err = star_number(seis, "seismology", sid, "numax_err_uhz", 0, &err);
    double dnu = star_number(seis, "seismology", sid, "dnu_uhz", 0, &err);
    double dnu_err = star_number(seis, "seismology", sid, "dnu_err_uhz", 0, &err);
    double prot = star_number(rot, "rotation", sid, "prot_d", 0, &err);
    double prot_err = star_number(rot, "rotation", sid, "prot_err_d", 0, &err);
    if (err) {
        res->error = err;
        return;
    }
    calc_t calc = {NULL, NULL, NULL};
    stellar_params_t p =
        derive(&calc, teff, logg, feh, numax, numax_err, dnu, dnu_err, prot, prot_err);
    if (calc.failed) {
        res->error = xasprintf("%s: star %s: %s: %s", MODULE, sid, calc.failed, calc.why);
        return;
    }
    double v[N_RESULTS] = {teff,      p.radius_rsun, p.radius_err_rsun, p.mass_msun,
                           p.mass_err_msun, p.age_gyr, p.age_err_gyr,   p.bv};
    for (int i = 0; i < N_RESULTS; i++) {
        res->values[i] = v[i];
        put_double(out, RESULT_NAMES[i], v[i]);
    }
    res->method = p.method;
    put_string(out, "parameters_method", p.method);
    res->ok = 1;
    res->error = xstrdup("");
}

/* ------------------------------------------------------------------ main */

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir);
    return xasprintf("%s%s%s", dir, (n && dir[n - 1] == '/') ? "" : "/", name);
}

int main(int argc, char **argv) {
    args_t args = parse_args(argc, argv);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);
    if (!debug) H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

    input_t inputs[N_INPUTS] = {{"prepared", args.prepared, -1, -1},
                                {"rotation", args.rotation, -1, -1},
                                {"seismology", args.seismology, -1, -1}};
    for (int k = 0; k < N_INPUTS; k++)
        if (inputs[k].path) open_chunk(&inputs[k]);
    const input_t *src = &inputs[IN_PREPARED];
    char *chunk_id = root_string(src, "chunk_id");
    char *observation_id = root_string(src, "observation_id");
    if (!chunk_id[0] || strchr(chunk_id, '/'))
        input_error(src->path, "chunk_id '%s' cannot name the output file", chunk_id);
    size_t n_stars = 0;
    char **ids = read_star_ids(src, &n_stars);

    char *name_h5 = xasprintf("%s." STAGE ".h5", chunk_id);
    char *name_json = xasprintf("%s." STAGE ".summary.json", chunk_id);
    char *p_h5 = join_path(args.outdir, name_h5), *p_json = join_path(args.outdir, name_json);
    if (strlen(p_h5) >= sizeof out_h5 || strlen(p_json) >= sizeof out_json)
        usage_error("argument --outdir: path too long");
    strcpy(out_h5, p_h5);
    strcpy(out_json, p_json);

    struct stat st;
    if (stat(args.outdir, &st) != 0) output_error(out_h5, strerror(errno));
    if (!S_ISDIR(st.st_mode)) output_error(out_h5, "--outdir is not a directory");
    writing = 1;
    hid_t fout = H5Fcreate(out_h5, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (fout < 0) {
        const char *why = h5_last_error();
        output_error(out_h5, access(args.outdir, W_OK) != 0 ? strerror(errno) : why);
    }

    /* Root attrs of the chunk contract, with provenance (chunk.provenance). */
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char created[32];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &utc);
    const char *image = getenv("STELLARFLOW_IMAGE");
    const char *digest = getenv("STELLARFLOW_IMAGE_HASH");
    put_string(fout, "chunk_id", chunk_id);
    put_string(fout, "observation_id", observation_id);
    put_string(fout, "stage", STAGE);
    if (attr_put_strings(fout, "star_ids", ids, n_stars) < 0)
        output_error(out_h5, h5_last_error());
    put_string(fout, "module", MODULE);
    put_string(fout, "module_version", VERSION);
    put_string(fout, "contracts_version", CONTRACTS_VERSION);
    put_string(fout, "image", image ? image : "none (no container)");
    put_string(fout, "image_digest", digest ? digest : "");
    put_string(fout, "host", host);
    put_string(fout, "created_utc", created);

    hid_t stars_out = H5Gcreate2(fout, "stars", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (stars_out < 0) output_error(out_h5, h5_last_error());
    star_result_t *results = calloc(n_stars ? n_stars : 1, sizeof *results);
    if (!results) output_error(out_h5, "out of memory");

    for (size_t i = 0; i < n_stars; i++) {
        const char *sid = ids[i];
        star_result_t *res = &results[i];
        res->id = ids[i];
        hid_t g_out = H5Gcreate2(stars_out, sid, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g_out < 0) output_error(out_h5, h5_last_error());
        hid_t groups[N_INPUTS];
        star_groups(inputs, sid, groups);
        char *upstream = upstream_error(groups);
        double cpu_s = 0.0;
        if (upstream) { /* carried as failed without being processed again */
            res->error = upstream;
        } else {
            double t0 = cpu_seconds();
            process_star(groups, sid, g_out, res);
            cpu_s = cpu_seconds() - t0;
            if (!res->ok && debug) fprintf(stderr, "%s: star %s failed: %s\n", MODULE, sid, res->error);
        }
        for (int k = 0; k < N_INPUTS; k++)
            if (groups[k] >= 0) H5Oclose(groups[k]);
        put_string(g_out, "status", res->ok ? "ok" : "failed");
        put_string(g_out, "error", res->error);
        put_double(g_out, "cpu_s", cpu_s);
        if (H5Gclose(g_out) < 0) output_error(out_h5, h5_last_error());
    }
    if (H5Gclose(stars_out) < 0 || H5Fclose(fout) < 0) output_error(out_h5, h5_last_error());
    if (write_summary(out_json, chunk_id, STAGE, MODULE, VERSION, results, n_stars) < 0)
        output_error(out_json, strerror(errno));
    writing = 0;

    for (int k = 0; k < N_INPUTS; k++) {
        if (inputs[k].stars >= 0) H5Gclose(inputs[k].stars);
        if (inputs[k].file >= 0) H5Fclose(inputs[k].file);
    }
    for (size_t i = 0; i < n_stars; i++) free(results[i].error);
    free(results);
    free_strings(ids, n_stars);
    free(chunk_id);
    free(observation_id);
    free(name_h5);
    free(name_json);
    free(p_h5);
    free(p_json);
    return 0;
}
