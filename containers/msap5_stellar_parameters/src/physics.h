/* MSAP5 equations: seismic scaling relations, Torres et al. (2010), Barnes (2007) gyrochronology
 * with B-V from Teff (Ballesteros 2012). Every operation follows the former Python module's
 * float semantics (CPython 3.11 float ops, glibc libm, scipy's brentq), so the results are the
 * same to the last bit where the same libm is used. */
#ifndef MSAP5_PHYSICS_H
#define MSAP5_PHYSICS_H

/* Solar reference values (stellarflow_contracts/solar.py, Huber et al. 2011). */
#define NUMAX_SUN_UHZ 3090.0
#define DNU_SUN_UHZ 135.1
#define TEFF_SUN_K 5777.0
#define LOGG_SUN 4.438

#define TEFF_ERR_DEFAULT 100.0 /* K, typical spectroscopic error */
#define LOGG_ERR_DEFAULT 0.1   /* dex */
#define FEH_DEFAULT 0.0

/* Where Python would have raised (OverflowError, ZeroDivisionError, ValueError, ...): the star
 * fails. The first failure wins; later arithmetic goes on but its results are not used. */
typedef struct {
    const char *stage;  /* what is being computed now, for the message */
    const char *failed; /* the stage that failed, or NULL */
    const char *why;    /* what went wrong there */
} calc_t;

typedef struct {
    double radius_rsun, radius_err_rsun, mass_msun, mass_err_msun;
    const char *method;
    double age_gyr, age_err_gyr, bv;
} stellar_params_t;

/* Radius, its error, mass, its error (solar units). */
void seismic(calc_t *c, double numax, double numax_err, double dnu, double dnu_err, double teff,
             double teff_err, double out[4]);
void torres2010(calc_t *c, double teff, double logg, double feh, double teff_err,
                double logg_err, double out[4]);
/* NaN when Teff is outside what the calibration covers on [-0.4, 2.5]. */
double bv_from_teff(calc_t *c, double teff);
/* Age (Gyr), its error, B-V. */
void gyro_age(calc_t *c, double prot_d, double prot_err_d, double teff, double out[3]);
stellar_params_t derive(calc_t *c, double teff, double logg, double feh, double numax,
                        double numax_err, double dnu, double dnu_err, double prot_d,
                        double prot_err_d);

#endif
