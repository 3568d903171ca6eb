/* The chunk machinery of a C module (see sf_contracts.h): command line, input chunk files,
 * output root attrs with provenance, the per-star loop with failure isolation, signals. The
 * Python counterpart is stellarflow_contracts.chunk (module_main, open_chunk, run_chunk,
 * provenance); what it does, this does. */
#define _POSIX_C_SOURCE 200809L

#include "sf_contracts.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static const char *program = "stellarflow module"; /* the module's name once main runs */
static int debug;

/* ------------------------------------------------------------------ small utilities */

void *sf_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "%s: out of memory\n", program);
        exit(1);
    }
    return p;
}

void *sf_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        fprintf(stderr, "%s: out of memory\n", program);
        exit(1);
    }
    return q;
}

char *sf_xstrdup(const char *s) { return strcpy(sf_xmalloc(strlen(s) + 1), s); }

char *sf_vxasprintf(const char *fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    char *s = sf_xmalloc((size_t)(n < 0 ? 0 : n) + 1);
    vsnprintf(s, (size_t)(n < 0 ? 0 : n) + 1, fmt, ap);
    return s;
}

char *sf_xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *s = sf_vxasprintf(fmt, ap);
    va_end(ap);
    return s;
}

static int py_space(unsigned char c) { /* str.split()'s ASCII whitespace */
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

char *sf_one_line(char *s) {
    char *o = s;
    for (const char *p = s; *p;) {
        while (*p && py_space((unsigned char)*p)) p++;
        if (!*p) break;
        if (o != s) *o++ = ' ';
        while (*p && !py_space((unsigned char)*p)) *o++ = *p++;
    }
    *o = '\0';
    return s;
}

double sf_cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int sf_debug(void) { return debug; }

/* ------------------------------------------------------------------ command line */

/* argparse's options of module_main, then one per input. */
typedef struct {
    const char *flag;    /* "--outdir" */
    const char *invocation; /* "-h, --help" or "--outdir OUTDIR" (for --help) */
    const char *help;
    int takes_value, required;
    const char **slot;   /* where the value goes */
} option_t;

enum { OPT_HELP, OPT_VERSION, OPT_DEBUG, OPT_OUTDIR, N_COMMON };

static _Noreturn void usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *msg = sf_vxasprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: error: %s (see --help)\n", program, sf_one_line(msg));
    exit(2);
}

static char *upper(const char *s) {
    char *u = sf_xstrdup(s);
    for (char *p = u; *p; p++)
        if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
    return u;
}

enum { WIDTH = 78, MAX_HELP_POSITION = 24 }; /* argparse's, with no terminal (80 columns - 2) */

/* argparse's usage: "usage: PROG [-h] ...", wrapped as its HelpFormatter wraps it. */
static void print_usage(FILE *f, const option_t *opts, int n) {
    const char *prefix = "usage: ";
    size_t np = 0;
    char **parts = sf_xmalloc((size_t)(2 * n + 1) * sizeof *parts);
    parts[np++] = sf_xstrdup(program);
    size_t total = strlen(program);
    for (int k = 0; k < n; k++) {
        const char *flag = k == OPT_HELP ? "-h" : opts[k].flag;
        char *meta = opts[k].takes_value ? upper(opts[k].flag + 2) : NULL;
        if (!opts[k].required) {
            parts[np++] = meta ? sf_xasprintf("[%s %s]", flag, meta) : sf_xasprintf("[%s]", flag);
        } else { /* argparse splits a required option into its two words */
            parts[np++] = sf_xstrdup(flag);
            if (meta) parts[np++] = sf_xstrdup(meta);
        }
        free(meta);
    }
    for (size_t i = 1; i < np; i++) total += 1 + strlen(parts[i]);
    fputs(prefix, f);
    if (strlen(prefix) + total <= WIDTH) {
        for (size_t i = 0; i < np; i++) fprintf(f, "%s%s", i ? " " : "", parts[i]);
    } else if (strlen(prefix) + strlen(program) <= 0.75 * WIDTH) {
        size_t ind = strlen(prefix) + strlen(program) + 1;
        size_t line_len = strlen(prefix) - 1;
        int line_has = 0;
        for (size_t i = 0; i < np; i++) {
            if (line_len + 1 + strlen(parts[i]) > WIDTH && line_has) {
                fprintf(f, "\n%*s", (int)ind, "");
                line_len = ind - 1;
                line_has = 0;
            }
            fprintf(f, "%s%s", line_has ? " " : "", parts[i]);
            line_len += strlen(parts[i]) + 1;
            line_has = 1;
        }
    } else { /* a long program name: the options on lines of their own */
        size_t ind = strlen(prefix), line_len = ind - 1;
        int line_has = 0;
        fputs(program, f);
        fprintf(f, "\n%*s", (int)ind, "");
        for (size_t i = 1; i < np; i++) {
            if (line_len + 1 + strlen(parts[i]) > WIDTH && line_has) {
                fprintf(f, "\n%*s", (int)ind, "");
                line_len = ind - 1;
                line_has = 0;
            }
            fprintf(f, "%s%s", line_has ? " " : "", parts[i]);
            line_len += strlen(parts[i]) + 1;
            line_has = 1;
        }
    }
    fputc('\n', f);
    sf_free_strings(parts, np);
}

/* textwrap.wrap(text, width), each line after the first indented by `ind`. */
static void print_wrapped(FILE *f, const char *text, size_t width, size_t ind) {
    char *t = sf_one_line(sf_xstrdup(text));
    size_t col = 0;
    int first = 1;
    for (char *w = strtok(t, " "); w; w = strtok(NULL, " ")) {
        size_t len = strlen(w);
        if (!first && col + 1 + len > width) {
            fprintf(f, "\n%*s", (int)ind, "");
            col = 0;
            first = 1;
        }
        fprintf(f, "%s%s", first ? "" : " ", w);
        col += (first ? 0 : 1) + len;
        first = 0;
    }
    fputc('\n', f);
    free(t);
}

static void print_help(FILE *f, const sf_module *m, const option_t *opts, int n) {
    print_usage(f, opts, n);
    fputc('\n', f);
    print_wrapped(f, m->description, WIDTH, 0);
    fputs("\noptions:\n", f);
    size_t longest = 0;
    for (int k = 0; k < n; k++)
        if (strlen(opts[k].invocation) + 2 > longest) longest = strlen(opts[k].invocation) + 2;
    size_t help_pos = longest + 2 < MAX_HELP_POSITION ? longest + 2 : MAX_HELP_POSITION;
    size_t action_width = help_pos - 4;
    for (int k = 0; k < n; k++) {
        const char *inv = opts[k].invocation;
        if (strlen(inv) <= action_width)
            fprintf(f, "  %-*s  ", (int)action_width, inv);
        else
            fprintf(f, "  %s\n%*s", inv, (int)help_pos, "");
        print_wrapped(f, opts[k].help, WIDTH - help_pos, help_pos);
    }
}

typedef struct {
    const char *outdir;
    const char *paths[SF_MAX_INPUTS];
} args_t;

/* argparse's rules, as module_main's parser: long options, --opt=value, unique prefixes, the
 * last repeat wins; errors in one line and exit 2. */
static args_t parse_args(const sf_module *m, int argc, char **argv) {
    args_t a = {".", {NULL}};
    int n = N_COMMON + m->n_inputs;
    option_t *opts = sf_xmalloc((size_t)n * sizeof *opts);
    opts[OPT_HELP] = (option_t){"--help", "-h, --help", "show this help message and exit", 0, 0,
                                NULL};
    opts[OPT_VERSION] = (option_t){"--version", "--version",
                                   "show program's version number and exit", 0, 0, NULL};
    opts[OPT_DEBUG] = (option_t){"--debug", "--debug", "show tracebacks and debug logs", 0, 0,
                                 NULL};
    opts[OPT_OUTDIR] = (option_t){"--outdir", "--outdir OUTDIR", "where to write outputs", 1, 0,
                                  &a.outdir};
    for (int k = 0; k < m->n_inputs; k++) {
        char *meta = upper(m->inputs[k].name);
        opts[N_COMMON + k] = (option_t){sf_xasprintf("--%s", m->inputs[k].name),
                                        sf_xasprintf("--%s %s", m->inputs[k].name, meta),
                                        m->inputs[k].help, 1, m->inputs[k].required,
                                        &a.paths[k]};
        free(meta);
    }
    size_t cap = 256, used = 0;
    char *unknown = sf_xmalloc(cap);
    unknown[0] = '\0';
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int positional = only_positional || arg[0] != '-' || arg[1] == '\0';
        if (!positional && strcmp(arg, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (!positional && strcmp(arg, "-h") == 0) arg = "--help";
        const char *eq = positional ? NULL : strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        int match = -1, matches = 0;
        for (int k = 0; !positional && k < n; k++) {
            if (strlen(opts[k].flag) == len && strncmp(opts[k].flag, arg, len) == 0) {
                match = k;
                matches = 1;
                break;
            }
            if (len > 2 && strncmp(opts[k].flag, arg, len) == 0) {
                match = k;
                matches++;
            }
        }
        if (matches > 1) {
            size_t ml = 0;
            char *list = sf_xmalloc(1);
            list[0] = '\0';
            for (int k = 0; k < n; k++) {
                if (strncmp(opts[k].flag, arg, len) != 0) continue;
                list = sf_xrealloc(list, ml + strlen(opts[k].flag) + 3);
                ml += (size_t)sprintf(list + ml, "%s%s", ml ? ", " : "", opts[k].flag);
            }
            usage_error("ambiguous option: %s could match %s", arg, list);
        }
        if (match < 0) { /* as argparse, collected and reported after the required ones */
            size_t al = strlen(argv[i]);
            if (used + al + 2 > cap) unknown = sf_xrealloc(unknown, cap = 2 * (used + al + 2));
            used += (size_t)sprintf(unknown + used, "%s%s", used ? " " : "", argv[i]);
            continue;
        }
        const char *flag = opts[match].flag;
        if (!opts[match].takes_value) {
            if (eq) usage_error("argument %s: ignored explicit argument '%s'", flag, eq + 1);
            if (match == OPT_HELP) {
                print_help(stdout, m, opts, n);
                exit(0);
            }
            if (match == OPT_VERSION) {
                printf("%s %s\n", m->name, m->version);
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
            usage_error("argument %s: expected one argument", flag);
        }
        *opts[match].slot = value;
    }
    size_t ml = 0;
    char *missing = sf_xmalloc(1);
    missing[0] = '\0';
    for (int k = 0; k < m->n_inputs; k++) {
        if (!m->inputs[k].required || a.paths[k]) continue;
        missing = sf_xrealloc(missing, ml + strlen(opts[N_COMMON + k].flag) + 3);
        ml += (size_t)sprintf(missing + ml, "%s%s", ml ? ", " : "", opts[N_COMMON + k].flag);
    }
    if (ml) usage_error("the following arguments are required: %s", missing);
    if (used) usage_error("unrecognized arguments: %s", unknown);
    free(missing);
    free(unknown);
    for (int k = N_COMMON; k < n; k++) {
        free((char *)opts[k].flag);
        free((char *)opts[k].invocation);
    }
    free(opts);
    return a;
}

/* ------------------------------------------------------------------ input chunk files */

typedef struct {
    const char *path;
    hid_t file, stars;
} input_t;

static _Noreturn void input_error(const char *path, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *msg = sf_vxasprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s: %s\n", program, path, sf_one_line(msg));
    exit(2);
}

/* An HDF5 file with a /stars group, a chunk_id and a contracts_version of this major version
 * (chunk.open_chunk). */
static void open_chunk(input_t *in) {
    struct stat st;
    if (stat(in->path, &st) != 0)
        input_error(in->path, "unreadable chunk HDF5 (%s)", strerror(errno));
    if (S_ISDIR(st.st_mode)) input_error(in->path, "unreadable chunk HDF5 (a directory)");
    in->file = H5Fopen(in->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (in->file < 0) {
        const char *why = sf_h5_last_error();
        if (access(in->path, R_OK) != 0) why = strerror(errno);
        input_error(in->path, "unreadable chunk HDF5 (%s)", *why ? why : "HDF5 cannot open it");
    }
    in->stars = -1;
    if (H5Lexists(in->file, "stars", H5P_DEFAULT) > 0) {
        hid_t obj = H5Oopen(in->file, "stars", H5P_DEFAULT);
        if (obj >= 0 && H5Iget_type(obj) == H5I_GROUP)
            in->stars = obj;
        else if (obj >= 0)
            H5Oclose(obj);
    }
    if (in->stars < 0 || H5Aexists(in->file, "chunk_id") <= 0)
        input_error(in->path, "not a stellarflow chunk file (no /stars or chunk_id)");
    char *written = NULL;
    sf_attr_rc rc = sf_attr_get_string(in->file, "contracts_version", &written);
    if (rc == SF_ATTR_WRONG_TYPE || rc == SF_ATTR_UNREADABLE)
        input_error(in->path, "root attribute contracts_version is not a string");
    if (rc == SF_ATTR_OK) {
        char major[16];
        snprintf(major, sizeof major, "%d", SF_CONTRACTS_MAJOR);
        size_t len = strcspn(written, ".");
        if (len != strlen(major) || strncmp(written, major, len) != 0)
            input_error(in->path, "written with contracts %s, this module reads %s.x", written,
                        major);
        free(written);
    }
}

static herr_t collect_name(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    char ***names = data;
    size_t n = 0;
    while ((*names)[n]) n++;
    *names = sf_xrealloc(*names, (n + 2) * sizeof **names);
    (*names)[n] = sf_xstrdup(name);
    (*names)[n + 1] = NULL;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The chunk's star ids in order: root attr star_ids, else the groups under /stars by name. */
static char **read_star_ids(const input_t *in, size_t *n) {
    char **ids = NULL;
    sf_attr_rc rc = sf_attr_get_strings(in->file, "star_ids", &ids, n);
    if (rc == SF_ATTR_WRONG_TYPE || rc == SF_ATTR_UNREADABLE)
        input_error(in->path, "root attribute star_ids is not an array of strings");
    if (rc == SF_ATTR_MISSING) {
        ids = sf_xmalloc(sizeof *ids);
        ids[0] = NULL;
        hsize_t idx = 0;
        if (H5Literate(in->stars, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, &ids) < 0)
            input_error(in->path, "cannot list the groups under /stars");
        for (*n = 0; ids[*n]; (*n)++) {
        }
    }
    /* Each id names a group /stars/<id> of the output: refuse what cannot be one. */
    char **sorted = sf_xmalloc(*n * sizeof *sorted);
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
    sf_attr_rc rc = sf_attr_get_string(in->file, name, &v);
    if (rc == SF_ATTR_MISSING) return sf_xstrdup("");
    if (rc != SF_ATTR_OK) input_error(in->path, "root attribute %s is not a string", name);
    return v;
}

/* ------------------------------------------------------------------ output, signals */

static char *out_h5, *out_json;
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
    fprintf(stderr, "%s: %s: cannot write (%s)\n", program, path, what);
    if (out_h5) unlink(out_h5);
    if (out_json) unlink(out_json);
    exit(1);
}

void sf_put_string(hid_t obj, const char *name, const char *value) {
    if (sf_attr_put_string(obj, name, value) < 0) output_error(out_h5, sf_h5_last_error());
}

void sf_put_double(hid_t obj, const char *name, double value) {
    if (sf_attr_put_double(obj, name, value) < 0) output_error(out_h5, sf_h5_last_error());
}

void sf_put_int(hid_t obj, const char *name, int64_t value) {
    if (sf_attr_put_int(obj, name, value) < 0) output_error(out_h5, sf_h5_last_error());
}

void sf_put_doubles(hid_t group, const char *path, const double *data, size_t n,
                    const char *units) {
    if (sf_write_doubles(group, path, data, n, units) < 0)
        output_error(out_h5, sf_h5_last_error());
}

/* ------------------------------------------------------------------ one star */

static void set_verdict(sf_star *star, sf_star_rc rc, const char *fmt, va_list ap) {
    if (star->message) return; /* the first one wins */
    star->message = sf_one_line(sf_vxasprintf(fmt, ap));
    star->verdict = rc;
}

sf_star_rc sf_fail(sf_star *star, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_verdict(star, SF_STAR_FAILED, fmt, ap);
    va_end(ap);
    return SF_STAR_FAILED;
}

sf_star_rc sf_not_measurable(sf_star *star, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    set_verdict(star, SF_STAR_NOT_MEASURABLE, fmt, ap);
    va_end(ap);
    return SF_STAR_NOT_MEASURABLE;
}

double sf_star_number(sf_star *star, int k, const char *name, int required) {
    double v = NAN;
    if (star->message) return v;
    const char *role = star->module->inputs[k].name;
    hid_t g = star->in[k];
    if (g < 0) {
        if (required) sf_fail(star, "%s: star %s: no group /stars/%s", role, star->id, star->id);
        return v;
    }
    char why[128] = "";
    switch (sf_attr_get_number(g, name, &v, why, sizeof why)) {
    case SF_ATTR_OK: return v;
    case SF_ATTR_MISSING:
        if (required) sf_fail(star, "%s: star %s: missing attribute '%s'", role, star->id, name);
        return NAN;
    case SF_ATTR_WRONG_TYPE:
        sf_fail(star, "%s: star %s: attribute '%s' is not a number (%s)", role, star->id, name,
                why);
        return NAN;
    default:
        sf_fail(star, "%s: star %s: attribute '%s' is unreadable (%s)", role, star->id, name,
                why);
        return NAN;
    }
}

/* The error of the first input (in the module's order) where the star failed, or NULL. */
static char *upstream_error(const sf_star *star, int n_inputs) {
    for (int k = 0; k < n_inputs; k++) {
        char *status = NULL;
        if (star->in[k] < 0 || sf_attr_get_string(star->in[k], "status", &status) != SF_ATTR_OK)
            continue;
        int failed = strcmp(status, "failed") == 0;
        free(status);
        if (!failed) continue;
        char *error = NULL;
        sf_attr_rc rc = sf_attr_get_string(star->in[k], "error", &error);
        if (rc == SF_ATTR_OK) return error; /* the same error, unchanged */
        return sf_xstrdup(rc == SF_ATTR_MISSING ? "" : "(upstream error attribute is not a string)");
    }
    return NULL;
}

/* Remove what a failed star wrote below its group (run_chunk deletes its keys). */
static void clear_children(hid_t g) {
    char **names = sf_xmalloc(sizeof *names);
    names[0] = NULL;
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, &names) < 0)
        output_error(out_h5, sf_h5_last_error());
    size_t n = 0;
    for (; names[n]; n++)
        if (H5Ldelete(g, names[n], H5P_DEFAULT) < 0) output_error(out_h5, sf_h5_last_error());
    sf_free_strings(names, n);
}

/* Run the module on one star; write its status, error, cpu_s. */
static void run_star(const sf_module *m, const input_t *inputs, const char *sid, hid_t g_out) {
    sf_star star = {m, sid, {-1}, g_out, NULL, SF_STAR_OK};
    for (int k = 0; k < SF_MAX_INPUTS; k++) star.in[k] = -1;
    for (int k = 0; k < m->n_inputs; k++)
        if (inputs[k].path && H5Lexists(inputs[k].stars, sid, H5P_DEFAULT) > 0)
            star.in[k] = H5Oopen(inputs[k].stars, sid, H5P_DEFAULT);
    char *error = upstream_error(&star, m->n_inputs);
    int ok = 0;
    double cpu_s = 0.0;
    if (!error) {
        double t0 = sf_cpu_seconds();
        sf_star_rc rc = m->process(&star, m->user);
        if (star.message) rc = star.verdict; /* sf_fail / sf_not_measurable decide */
        if (rc == SF_STAR_OK) {
            ok = 1;
        } else if (rc == SF_STAR_NOT_MEASURABLE) {
            clear_children(g_out);
            char *note = sf_xasprintf("%s: %s", m->name, star.message ? star.message : "");
            sf_put_string(g_out, "note", note);
            free(note);
            ok = 1;
        } else {
            clear_children(g_out);
            error = sf_xasprintf("%s: %s", m->name,
                                 star.message ? star.message : "failed (no message)");
            if (debug) fprintf(stderr, "%s: star %s failed: %s\n", m->name, sid, error);
        }
        cpu_s = sf_cpu_seconds() - t0;
    }
    for (int k = 0; k < m->n_inputs; k++)
        if (star.in[k] >= 0) H5Oclose(star.in[k]);
    sf_put_string(g_out, "status", ok ? "ok" : "failed");
    sf_put_string(g_out, "error", ok ? "" : error);
    sf_put_double(g_out, "cpu_s", cpu_s);
    free(error);
    free(star.message);
}

/* ------------------------------------------------------------------ main */

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir);
    return sf_xasprintf("%s%s%s", dir, (n && dir[n - 1] == '/') ? "" : "/", name);
}

/* What the module ran on, as chunk.RUNTIME says it for Python ("python ...; HDF5 ..."). */
#if defined(__clang__)
#define COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER "unknown compiler"
#endif

/* Root attrs of the chunk contract, with provenance (chunk.write_root_attrs, provenance). */
static void write_root_attrs(hid_t fout, const sf_module *m, const char *chunk_id,
                             const char *observation_id, char **ids, size_t n_stars) {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char created[32];
    time_t now = time(NULL);
    struct tm utc;
    gmtime_r(&now, &utc);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &utc);
    const char *image = getenv("STELLARFLOW_IMAGE");
    const char *digest = getenv("STELLARFLOW_IMAGE_HASH");
    sf_put_string(fout, "chunk_id", chunk_id);
    sf_put_string(fout, "observation_id", observation_id);
    sf_put_string(fout, "stage", m->stage);
    if (sf_attr_put_strings(fout, "star_ids", ids, n_stars) < 0)
        output_error(out_h5, sf_h5_last_error());
    sf_put_string(fout, "module", m->name);
    sf_put_string(fout, "module_version", m->version);
    sf_put_string(fout, "contracts_version", SF_CONTRACTS_VERSION);
    sf_put_string(fout, "image", image ? image : "none (no container)");
    sf_put_string(fout, "image_digest", digest ? digest : "");
    unsigned major = 0, minor = 0, release = 0;
    H5get_libversion(&major, &minor, &release);
    char *runtime = sf_xasprintf("C (%s); HDF5 %u.%u.%u", COMPILER, major, minor, release);
    sf_put_string(fout, "runtime", runtime);
    free(runtime);
    sf_put_string(fout, "host", host);
    sf_put_string(fout, "created_utc", created);
}

int sf_module_main(const sf_module *m, int argc, char **argv) {
    program = m->name;
    if (m->n_inputs < 1 || m->n_inputs > SF_MAX_INPUTS || m->primary < 0 ||
        m->primary >= m->n_inputs || !m->inputs[m->primary].required) {
        fprintf(stderr, "%s: bad sf_module: 1 to %d inputs, the primary one required\n",
                program, SF_MAX_INPUTS);
        return 1;
    }
    args_t args = parse_args(m, argc, argv);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);
    if (!debug) H5Eset_auto2(H5E_DEFAULT, NULL, NULL);

    input_t inputs[SF_MAX_INPUTS];
    for (int k = 0; k < m->n_inputs; k++) {
        inputs[k] = (input_t){args.paths[k], -1, -1};
        if (inputs[k].path) open_chunk(&inputs[k]);
    }
    const input_t *src = &inputs[m->primary];
    char *chunk_id = root_string(src, "chunk_id");
    char *observation_id = root_string(src, "observation_id");
    if (!chunk_id[0] || strchr(chunk_id, '/'))
        input_error(src->path, "chunk_id '%s' cannot name the output file", chunk_id);
    size_t n_stars = 0;
    char **ids = read_star_ids(src, &n_stars);

    char *name_h5 = sf_xasprintf("%s.%s.h5", chunk_id, m->stage);
    char *name_json = sf_xasprintf("%s.%s.summary.json", chunk_id, m->stage);
    out_h5 = join_path(args.outdir, name_h5);
    out_json = join_path(args.outdir, name_json);

    struct stat st;
    if (stat(args.outdir, &st) != 0) output_error(out_h5, strerror(errno));
    if (!S_ISDIR(st.st_mode)) output_error(out_h5, "--outdir is not a directory");
    writing = 1;
    hid_t fout = H5Fcreate(out_h5, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (fout < 0) {
        const char *why = sf_h5_last_error();
        output_error(out_h5, access(args.outdir, W_OK) != 0 ? strerror(errno) : why);
    }
    write_root_attrs(fout, m, chunk_id, observation_id, ids, n_stars);

    hid_t stars_out = H5Gcreate2(fout, "stars", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (stars_out < 0) output_error(out_h5, sf_h5_last_error());
    for (size_t i = 0; i < n_stars; i++) {
        hid_t g_out = H5Gcreate2(stars_out, ids[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (g_out < 0) output_error(out_h5, sf_h5_last_error());
        run_star(m, inputs, ids[i], g_out);
        if (H5Gclose(g_out) < 0) output_error(out_h5, sf_h5_last_error());
    }
    if (m->finish) m->finish(fout, m->user);
    if (H5Gclose(stars_out) < 0 || H5Fclose(fout) < 0) output_error(out_h5, sf_h5_last_error());
    if (sf_write_summary(out_h5, out_json) < 0) output_error(out_json, strerror(errno));
    writing = 0;
    /* What the step used, after its outputs (a profile never fails a finished step). */
    char *prefix = sf_xasprintf("%s.%s", chunk_id, m->stage);
    if (sf_write_profile(m, args.outdir, prefix, args.paths, 0) < 0 && debug)
        fprintf(stderr, "%s: cannot write the step profile: %s\n", program, strerror(errno));
    free(prefix);

    for (int k = 0; k < m->n_inputs; k++) {
        if (inputs[k].stars >= 0) H5Oclose(inputs[k].stars);
        if (inputs[k].file >= 0) H5Fclose(inputs[k].file);
    }
    sf_free_strings(ids, n_stars);
    free(chunk_id);
    free(observation_id);
    free(name_h5);
    free(name_json);
    return 0;
}
