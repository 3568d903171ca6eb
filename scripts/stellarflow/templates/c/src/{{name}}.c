/* {{name}}: the number of finite samples and the rms scatter (ppm) of each star's prepared
 * light curve. A template from `stellarflow new-module --language c`: replace `measure` and
 * `process` with your science and say what it measures in README.md. The contracts library's
 * C part (sf_contracts.h) does the command line, the chunk files, the per-star failure
 * isolation, provenance and the step summary.
 *
 * Exit status: 0 done (some stars may have failed: see their status), 2 bad usage or input
 * file (one line on stderr), 1 the output could not be written, 143 on SIGTERM. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "sf_contracts.h"

#if SF_CONTRACTS_MAJOR != 1
#error "{{name}} reads and writes chunk contracts 1.x"
#endif

enum { IN_PREPARED, N_INPUTS };

static const sf_input INPUTS[N_INPUTS] = {
    {"prepared", "prepared chunk file (MSAP1)", 1},
};

/* Finite samples of a relative light curve, and the standard deviation of (flux - 1) in ppm
 * over them (numpy.std: ddof 0); NaN without any. */
static void measure(const double *flux, size_t n, int64_t *n_points, double *rms_ppm) {
    size_t good = 0;
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(flux[i])) {
            sum += (flux[i] - 1.0) * 1e6;
            good++;
        }
    *n_points = (int64_t)good;
    if (good == 0) {
        *rms_ppm = NAN;
        return;
    }
    double mean = sum / (double)good, squares = 0.0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(flux[i])) {
            double d = (flux[i] - 1.0) * 1e6 - mean;
            squares += d * d;
        }
    *rms_ppm = sqrt(squares / (double)good);
}

/* One star: read its prepared light curve, write its results into its output group. A star
 * that cannot be measured fails alone, with a one-line error (sf_fail). */
static sf_star_rc process(sf_star *s, void *user) {
    (void)user;
    hid_t g = s->in[IN_PREPARED];
    if (g < 0) return sf_fail(s, "prepared: star %s: no group /stars/%s", s->id, s->id);
    double *flux = NULL;
    size_t n = 0;
    char why[128] = "";
    switch (sf_read_doubles(g, "prepared/flux", &flux, &n, why, sizeof why)) {
    case SF_ATTR_OK: break;
    case SF_ATTR_MISSING:
        return sf_fail(s, "prepared: star %s: no dataset prepared/flux", s->id);
    case SF_ATTR_WRONG_TYPE:
        return sf_fail(s, "prepared: star %s: prepared/flux is not numbers (%s)", s->id, why);
    default:
        return sf_fail(s, "prepared: star %s: prepared/flux is unreadable (%s)", s->id, why);
    }
    int64_t n_points;
    double rms_ppm;
    measure(flux, n, &n_points, &rms_ppm);
    free(flux);
    sf_put_int(s->out, "n_points", n_points);
    sf_put_double(s->out, "rms_ppm", rms_ppm);
    return SF_STAR_OK;
}

static const sf_module MODULE = {
    .name = "{{name}}",
    .version = "1.0.0", /* module.yml's version */
    .stage = "{{stage}}",
    .description = "{{name}}: samples and rms scatter of each light curve",
    .inputs = INPUTS,
    .n_inputs = N_INPUTS,
    .primary = IN_PREPARED,
    .process = process,
};

int main(int argc, char **argv) { return sf_module_main(&MODULE, argc, argv); }
