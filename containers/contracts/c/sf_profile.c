/* The step profile (sf_write_profile, see sf_contracts.h): what stellarflow_contracts.profile
 * writes for a Python module, with the same keys and meanings, for a C module. */
#define _POSIX_C_SOURCE 200809L
#include "sf_contracts.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RECORD "stellarflow-step-profile"
#define RECORD_VERSION 1

static double now_epoch(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* When this process started: /proc/self/stat's starttime (ticks since boot) against
 * /proc/uptime, as profile.process_start_time does; now when /proc cannot tell. */
static double process_start(double now) {
    double uptime = -1;
    unsigned long long ticks = 0;
    FILE *f = fopen("/proc/uptime", "r");
    if (f) {
        if (fscanf(f, "%lf", &uptime) != 1) uptime = -1;
        fclose(f);
    }
    f = fopen("/proc/self/stat", "r");
    if (!f || uptime < 0) {
        if (f) fclose(f);
        return now;
    }
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p) return now;
    p++;
    for (int field = 3; field <= 22 && p; field++) { /* starttime is field 22 */
        while (*p == ' ') p++;
        if (field == 22) {
            ticks = strtoull(p, NULL, 10);
            break;
        }
        p = strchr(p, ' ');
    }
    long hz = sysconf(_SC_CLK_TCK);
    if (!ticks || hz <= 0) return now;
    return now - (uptime - (double)ticks / (double)hz);
}

static void utc(double t, char *out, size_t len) {
    time_t s = (time_t)t;
    struct tm tm;
    gmtime_r(&s, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, len, "%s.%06ldZ", base, (long)((t - (double)s) * 1e6));
}

/* "key": value pairs of /proc/self/io; -1 where missing. */
static long long io_field(const char *key) {
    FILE *f = fopen("/proc/self/io", "r");
    if (!f) return -1;
    char name[64];
    long long v, found = -1;
    while (fscanf(f, "%63[^:]: %lld\n", name, &v) == 2) {
        if (strcmp(name, key) == 0) {
            found = v;
            break;
        }
    }
    fclose(f);
    return found;
}

static void put_number(FILE *f, const char *key, long long v, int last) {
    fprintf(f, " \"%s\": ", key);
    if (v < 0)
        fputs("null", f);
    else
        fprintf(f, "%lld", v);
    fputs(last ? "\n" : ",\n", f);
}

static void put_file(FILE *f, const char *option, const char *path, int first) {
    struct stat st;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    fputs(first ? "\n  {\n   \"name\": " : ",\n  {\n   \"name\": ", f);
    sf_json_string(f, base);
    fputs(",\n   \"size\": ", f);
    if (stat(path, &st) == 0)
        fprintf(f, "%lld", (long long)st.st_size);
    else
        fputs("null", f);
    if (option) {
        fputs(",\n   \"option\": ", f);
        sf_json_string(f, option);
    }
    fputs("\n  }", f);
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sf_write_profile(const sf_module *m, const char *outdir, const char *prefix,
                     const char *const *input_paths, int exit_status) {
    double end = now_epoch();
    double start = process_start(end);
    char *name = sf_xasprintf("%s.profile.json", prefix);
    size_t dn = strlen(outdir);
    char *path = sf_xasprintf("%s%s%s", outdir, (dn && outdir[dn - 1] == '/') ? "" : "/", name);
    struct rusage me, kids;
    getrusage(RUSAGE_SELF, &me);
    getrusage(RUSAGE_CHILDREN, &kids);
    double user = me.ru_utime.tv_sec + me.ru_utime.tv_usec / 1e6 + kids.ru_utime.tv_sec +
                  kids.ru_utime.tv_usec / 1e6;
    double sys = me.ru_stime.tv_sec + me.ru_stime.tv_usec / 1e6 + kids.ru_stime.tv_sec +
                 kids.ru_stime.tv_usec / 1e6;
    long maxrss = me.ru_maxrss > kids.ru_maxrss ? me.ru_maxrss : kids.ru_maxrss;

    /* The outputs: every visible regular file in outdir but this one, sorted by name. */
    char **outs = NULL;
    size_t n_outs = 0;
    DIR *d = opendir(outdir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (e->d_name[0] == '.' || strcmp(e->d_name, name) == 0) continue;
            char *full = sf_xasprintf("%s/%s", outdir, e->d_name);
            struct stat st;
            if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
                outs = sf_xrealloc(outs, (n_outs + 1) * sizeof *outs);
                outs[n_outs++] = full;
            } else {
                free(full);
            }
        }
        closedir(d);
    }
    qsort(outs, n_outs, sizeof *outs, cmp_name);

    FILE *f = fopen(path, "w");
    int rc = -1;
    if (f) {
        char host[256] = "", t0[40], t1[40];
        gethostname(host, sizeof host - 1);
        utc(start, t0, sizeof t0);
        utc(end, t1, sizeof t1);
        const char *image = getenv("STELLARFLOW_IMAGE");
        const char *digest = getenv("STELLARFLOW_IMAGE_HASH");
        fputs("{\n \"record\": \"" RECORD "\",\n", f);
        fprintf(f, " \"record_version\": %d,\n \"module\": ", RECORD_VERSION);
        sf_json_string(f, m->name);
        fputs(",\n \"module_version\": ", f);
        sf_json_string(f, m->version);
        fputs(",\n \"contracts_version\": \"" SF_CONTRACTS_VERSION "\",\n \"image\": ", f);
        sf_json_string(f, image ? image : "none (no container)");
        fputs(",\n \"image_digest\": ", f);
        sf_json_string(f, digest ? digest : "");
        fputs(",\n \"host\": ", f);
        sf_json_string(f, host);
        fprintf(f, ",\n \"pid\": %ld,\n \"start_utc\": \"%s\",\n \"end_utc\": \"%s\",\n",
                (long)getpid(), t0, t1);
        fprintf(f, " \"wall_s\": %.3f,\n \"cpu_user_s\": %.3f,\n \"cpu_system_s\": %.3f,\n"
                   " \"cpu_s\": %.3f,\n",
                end - start, user, sys, user + sys);
        put_number(f, "max_rss_bytes", (long long)maxrss * 1024, 0);
        put_number(f, "read_bytes", io_field("rchar"), 0);
        put_number(f, "written_bytes", io_field("wchar"), 0);
        put_number(f, "storage_read_bytes", io_field("read_bytes"), 0);
        put_number(f, "storage_written_bytes", io_field("write_bytes"), 0);
        fprintf(f, " \"exit_status\": %d,\n \"inputs\": [", exit_status);
        int first = 1;
        for (int k = 0; k < m->n_inputs; k++) {
            if (!input_paths[k]) continue;
            put_file(f, m->inputs[k].name, input_paths[k], first);
            first = 0;
        }
        fputs(first ? "],\n \"outputs\": [" : "\n ],\n \"outputs\": [", f);
        for (size_t i = 0; i < n_outs; i++) put_file(f, NULL, outs[i], i == 0);
        fputs(n_outs ? "\n ]\n}\n" : "]\n}\n", f);
        rc = fclose(f) == 0 ? 0 : -1;
    }
    for (size_t i = 0; i < n_outs; i++) free(outs[i]);
    free(outs);
    free(name);
    free(path);
    return rc;
}
