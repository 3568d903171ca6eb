/* msap5_stellar_parameters: MSAP5 stellar radius, mass and gyrochronology age for one chunk.
 *
 * Reads the chunk files of the stages prepared (MSAP1), rotation (MSAP4) and, when MSAP3 ran,
 * seismology; writes <outdir>/<chunk_id>.parameters.h5 and its summary JSON by the stellarflow
 * chunk contract (docs/contracts.md, stellarflow_contracts/specs/chunk-parameters.json). The
 * chunk machinery (command line, input checks, provenance, per-star failure isolation, CPU
 * seconds per star, summary, signals) is the contracts library's C part
 * (containers/contracts/c, sf_contracts.h); the equations are physics.c.
 *
 * Exit status: 0 done (some stars may have failed: see their status), 2 bad usage or input
 * file (one line on stderr), 1 the output could not be written, 143 on SIGTERM. */
#include "physics.h"
#include "sf_contracts.h"

#if SF_CONTRACTS_MAJOR != 1
#error "msap5_stellar_parameters reads and writes chunk contracts 1.x"
#endif

enum { IN_PREPARED, IN_ROTATION, IN_SEISMOLOGY, N_INPUTS };

static const sf_input INPUTS[N_INPUTS] = {
    {"prepared", "chunk file from MSAP1", 1},
    {"rotation", "chunk file from MSAP4", 1},
    {"seismology", "chunk file from MSAP3 (absent if skipped)", 0},
};

enum { N_RESULTS = 8 };
static const char *const RESULT_NAMES[N_RESULTS] = {
    "teff", "radius_rsun", "radius_err_rsun", "mass_msun", "mass_err_msun",
    "age_gyr", "age_err_gyr", "bv"};

/* Derive one star's parameters from its inputs (NaN where absent; teff, logg, feh required). */
static sf_star_rc process_star(sf_star *s, void *user) {
    (void)user;
    double teff = sf_star_number(s, IN_PREPARED, "teff", 1);
    double logg = sf_star_number(s, IN_PREPARED, "logg", 1);
    double feh = sf_star_number(s, IN_PREPARED, "feh", 1);
    double numax = sf_star_number(s, IN_SEISMOLOGY, "numax_uhz", 0);
    double numax_err = sf_star_number(s, IN_SEISMOLOGY, "numax_err_uhz", 0);
    double dnu = sf_star_number(s, IN_SEISMOLOGY, "dnu_uhz", 0);
    double dnu_err = sf_star_number(s, IN_SEISMOLOGY, "dnu_err_uhz", 0);
    double prot = sf_star_number(s, IN_ROTATION, "prot_d", 0);
    double prot_err = sf_star_number(s, IN_ROTATION, "prot_err_d", 0);
    if (s->message) return SF_STAR_FAILED;
    calc_t calc = {NULL, NULL, NULL};
    stellar_params_t p =
        derive(&calc, teff, logg, feh, numax, numax_err, dnu, dnu_err, prot, prot_err);
    if (calc.failed) return sf_fail(s, "star %s: %s: %s", s->id, calc.failed, calc.why);
    double v[N_RESULTS] = {teff,            p.radius_rsun, p.radius_err_rsun, p.mass_msun,
                           p.mass_err_msun, p.age_gyr,     p.age_err_gyr,     p.bv};
    for (int i = 0; i < N_RESULTS; i++) sf_put_double(s->out, RESULT_NAMES[i], v[i]);
    sf_put_string(s->out, "parameters_method", p.method);
    return SF_STAR_OK;
}

static const sf_module MODULE = {
    .name = "msap5_stellar_parameters",
    .version = "1.1.0",
    .stage = "parameters",
    .description = "MSAP5: stellar radius, mass and gyrochronology age",
    .inputs = INPUTS,
    .n_inputs = N_INPUTS,
    .primary = IN_PREPARED,
    .process = process_star,
};

int main(int argc, char **argv) { return sf_module_main(&MODULE, argc, argv); }
