/* MSAP5 equations (see physics.h and README.md for the references). */
#include "physics.h"

#include <errno.h>
#include <math.h>

/* Torres et al. (2010) coefficients: log M, log R = f(X = log Teff - 4.1, log g, [Fe/H]). */
static const double TORRES_A[7] = {1.5689, 1.3787, 0.4243, 1.139, -0.1425, 0.01969, 0.1010};
static const double TORRES_B[7] = {2.4427, 0.6679, 0.1771, 0.705, -0.21415, 0.02306, 0.04173};
static const double TORRES_SCATTER_LOGM = 0.027, TORRES_SCATTER_LOGR = 0.014;
/* Barnes (2007): P = a [(B-V) - c]^b t^n, t in Myr. */
static const double GYRO_A = 0.7725, GYRO_B = 0.601, GYRO_C = 0.4, GYRO_N = 0.5189;
static const double GYRO_REL_ERR = 0.15; /* the calibration's own scatter on age */
/* scipy.optimize.brentq defaults: xtol, rtol = 4 * DBL_EPSILON, maxiter. */
static const double BRENT_XTOL = 2e-12, BRENT_RTOL = 8.881784197001252e-16;
enum { BRENT_MAXITER = 100 };

/* libm through pointers the compiler cannot see through: no constant folding or rewriting
 * (pow(x, 2.0) -> x*x), so every value comes from the same libm as the Python reference. */
static double (*volatile libm_pow)(double, double) = pow;
static double (*volatile libm_log)(double) = log;
static double (*volatile libm_log10)(double) = log10;
static double (*volatile libm_hypot)(double, double) = hypot;

static void fail(calc_t *c, const char *why) {
    if (!c->failed) {
        c->failed = c->stage;
        c->why = why;
    }
}

static int is_odd_integer(double x) { return fmod(fabs(x), 2.0) == 1.0; }

/* v ** w for Python floats (CPython 3.11 float_pow). */
static double py_pow(calc_t *c, double v, double w) {
    int negate = 0;
    if (w == 0.0) return 1.0;
    if (isnan(v)) return v;
    if (isnan(w)) return v == 1.0 ? 1.0 : w;
    if (isinf(w)) {
        double a = fabs(v);
        if (a == 1.0) return 1.0;
        return ((w > 0.0) == (a > 1.0)) ? fabs(w) : 0.0;
    }
    if (isinf(v)) {
        int odd = is_odd_integer(w);
        if (w > 0.0) return odd ? v : fabs(v);
        return odd ? copysign(0.0, v) : 0.0;
    }
    if (v == 0.0) {
        if (w < 0.0) {
            fail(c, "division by zero (0.0 to a negative power)");
            return NAN;
        }
        return is_odd_integer(w) ? v : 0.0;
    }
    if (v < 0.0) {
        if (w != floor(w)) {
            fail(c, "complex result (negative number to a fractional power)");
            return NAN;
        }
        v = -v;
        negate = is_odd_integer(w);
    }
    if (v == 1.0) return negate ? -1.0 : 1.0;
    errno = 0;
    double x = libm_pow(v, w);
    if (errno == 0) {
        if (isinf(x)) errno = ERANGE;
    } else if (errno == ERANGE && x == 0.0) {
        errno = 0; /* underflow to zero is not an error */
    }
    if (negate) x = -x;
    if (errno != 0) {
        fail(c, errno == ERANGE ? "numerical overflow" : "math domain error");
        return NAN;
    }
    return x;
}

/* a / b for Python floats: division by zero raises. */
static double py_div(calc_t *c, double a, double b) {
    if (b == 0.0) {
        fail(c, "division by zero");
        return NAN;
    }
    return a / b;
}

/* math.log / math.log10 (CPython 3.11 m_log, math_1): 0, negatives and -inf are errors. */
static double py_logf(calc_t *c, double x, double (*f)(double)) {
    if (isnan(x)) return x;
    if (isinf(x)) {
        if (x > 0.0) return x;
        fail(c, "math domain error (log of a negative number)");
        return NAN;
    }
    if (x > 0.0) return f(x);
    fail(c, x == 0.0 ? "math domain error (log of zero)"
                     : "math domain error (log of a negative number)");
    return NAN;
}

static double py_log(calc_t *c, double x) { return py_logf(c, x, libm_log); }
static double py_log10(calc_t *c, double x) { return py_logf(c, x, libm_log10); }

/* math.sqrt: negative arguments are errors. */
static double py_sqrt(calc_t *c, double x) {
    if (!isnan(x) && x < 0.0) {
        fail(c, "math domain error (square root of a negative number)");
        return NAN;
    }
    return sqrt(x);
}

/* All finite and > 0 (the Python module's _finite). */
static int positive_finite(double v) { return isfinite(v) && v > 0.0; }

void seismic(calc_t *c, double numax, double numax_err, double dnu, double dnu_err, double teff,
             double teff_err, double out[4]) {
    c->stage = "seismic scaling relations";
    double x = py_div(c, numax, NUMAX_SUN_UHZ), y = py_div(c, dnu, DNU_SUN_UHZ),
           z = py_div(c, teff, TEFF_SUN_K);
    double radius = x * py_pow(c, y, -2.0) * py_pow(c, z, 0.5);
    double mass = py_pow(c, x, 3.0) * py_pow(c, y, -4.0) * py_pow(c, z, 1.5);
    double rx = isfinite(numax_err) ? py_div(c, numax_err, numax) : 0.05;
    double ry = isfinite(dnu_err) ? py_div(c, dnu_err, dnu) : 0.03;
    double rz = py_div(c, teff_err, teff);
    double r_err = radius * py_sqrt(c, py_pow(c, rx, 2.0) + py_pow(c, 2.0 * ry, 2.0) +
                                           py_pow(c, 0.5 * rz, 2.0));
    double m_err = mass * py_sqrt(c, py_pow(c, 3.0 * rx, 2.0) + py_pow(c, 4.0 * ry, 2.0) +
                                         py_pow(c, 1.5 * rz, 2.0));
    out[0] = radius;
    out[1] = r_err;
    out[2] = mass;
    out[3] = m_err;
}

/* (mass, radius) of the calibration; the sums run left to right like Python's sum(). */
static void torres(calc_t *c, double teff, double logg, double feh, double *mass,
                   double *radius) {
    double x = py_log10(c, teff) - 4.1;
    double terms[7] = {1.0, x, py_pow(c, x, 2.0), py_pow(c, x, 3.0), py_pow(c, logg, 2.0),
                       py_pow(c, logg, 3.0), feh};
    double log_m = 0.0, log_r = 0.0;
    for (int i = 0; i < 7; i++) log_m += TORRES_A[i] * terms[i];
    for (int i = 0; i < 7; i++) log_r += TORRES_B[i] * terms[i];
    *mass = py_pow(c, 10.0, log_m);
    *radius = py_pow(c, 10.0, log_r);
}

void torres2010(calc_t *c, double teff, double logg, double feh, double teff_err,
                double logg_err, double out[4]) {
    c->stage = "Torres et al. 2010 calibration";
    double mass, radius, m_t, r_t, m_g, r_g;
    torres(c, teff, logg, feh, &mass, &radius);
    torres(c, teff + teff_err, logg, feh, &m_t, &r_t);
    torres(c, teff, logg + logg_err, feh, &m_g, &r_g);
    double ln10 = libm_log(10.0);
    double r_err =
        radius * py_sqrt(c, py_pow(c, py_log(c, py_div(c, r_t, radius)), 2.0) +
                                py_pow(c, py_log(c, py_div(c, r_g, radius)), 2.0) +
                                py_pow(c, TORRES_SCATTER_LOGR * ln10, 2.0));
    double m_err = mass * py_sqrt(c, py_pow(c, py_log(c, py_div(c, m_t, mass)), 2.0) +
                                         py_pow(c, py_log(c, py_div(c, m_g, mass)), 2.0) +
                                         py_pow(c, TORRES_SCATTER_LOGM * ln10, 2.0));
    out[0] = radius;
    out[1] = r_err;
    out[2] = mass;
    out[3] = m_err;
}

/* Ballesteros (2012) Teff(B-V) minus the target Teff. */
static double ballesteros(calc_t *c, double bv, double teff) {
    return 4600.0 * (py_div(c, 1.0, 0.92 * bv + 1.7) + py_div(c, 1.0, 0.92 * bv + 0.62)) - teff;
}

double bv_from_teff(calc_t *c, double teff) {
    c->stage = "B-V from Teff (Brent's method)";
    /* Brent's method with inverse quadratic extrapolation, step for step as
     * scipy.optimize.brentq (default tolerances) takes it. A function value of NaN or no sign
     * change on the interval gives NaN (brentq's ValueError); no convergence fails the star
     * (brentq's RuntimeError). */
    double a = -0.4, b = 2.5;
    double x_prev = a, x_cur = b, x_blk = 0.0, f_blk = 0.0, s_prev = 0.0, s_cur = 0.0;
    double f_prev = ballesteros(c, x_prev, teff), f_cur = ballesteros(c, x_cur, teff);
    if (c->failed) return NAN;
    if (isnan(f_prev) || isnan(f_cur)) return NAN;
    if (f_prev * f_cur > 0) return NAN;
    if (f_prev == 0) return x_prev;
    if (f_cur == 0) return x_cur;
    for (int i = 0; i < BRENT_MAXITER; i++) {
        if (f_prev * f_cur < 0) { /* the root lies between x_prev and x_cur: new contrapoint */
            x_blk = x_prev;
            f_blk = f_prev;
            s_prev = s_cur = x_cur - x_prev;
        }
        if (fabs(f_blk) < fabs(f_cur)) { /* keep the best estimate in x_cur */
            x_prev = x_cur;
            x_cur = x_blk;
            x_blk = x_prev;
            f_prev = f_cur;
            f_cur = f_blk;
            f_blk = f_prev;
        }
        double delta = (BRENT_XTOL + BRENT_RTOL * fabs(x_cur)) / 2;
        double s_bis = (x_blk - x_cur) / 2;
        if (f_cur == 0 || fabs(s_bis) < delta) return x_cur;
        int bisect = 1;
        if (fabs(s_prev) > delta && fabs(f_cur) < fabs(f_prev)) {
            double s_try;
            if (x_prev == x_blk) { /* secant */
                s_try = -f_cur * (x_cur - x_prev) / (f_cur - f_prev);
            } else { /* inverse quadratic extrapolation */
                double d_prev = (f_prev - f_cur) / (x_prev - x_cur);
                double d_blk = (f_blk - f_cur) / (x_blk - x_cur);
                s_try = -f_cur * (f_blk * d_blk - f_prev * d_prev) /
                        (d_blk * d_prev * (f_blk - f_prev));
            }
            double limit = 3 * fabs(s_bis) - delta;
            if (fabs(s_prev) < limit) limit = fabs(s_prev);
            if (2 * fabs(s_try) < limit) { /* a good short step */
                s_prev = s_cur;
                s_cur = s_try;
                bisect = 0;
            }
        }
        if (bisect) s_prev = s_cur = s_bis;
        x_prev = x_cur;
        f_prev = f_cur;
        if (fabs(s_cur) > delta)
            x_cur += s_cur;
        else
            x_cur += (s_bis > 0 ? delta : -delta);
        f_cur = ballesteros(c, x_cur, teff);
        if (c->failed) return NAN;
        if (isnan(f_cur)) return NAN;
    }
    fail(c, "no convergence after 100 iterations");
    return NAN;
}

void gyro_age(calc_t *c, double prot_d, double prot_err_d, double teff, double out[3]) {
    double bv = bv_from_teff(c, teff);
    out[0] = out[1] = NAN;
    out[2] = bv;
    if (!(isfinite(bv) && 0.45 < bv && bv < 1.6 && positive_finite(prot_d))) return;
    c->stage = "gyrochronology (Barnes 2007)";
    double age_myr = py_pow(
        c, py_div(c, prot_d, GYRO_A * py_pow(c, bv - GYRO_C, GYRO_B)), 1.0 / GYRO_N);
    double rel_p = isfinite(prot_err_d) ? py_div(c, prot_err_d, prot_d) : 0.1;
    double rel =
        py_sqrt(c, py_pow(c, py_div(c, rel_p, GYRO_N), 2.0) + py_pow(c, GYRO_REL_ERR, 2.0));
    out[0] = age_myr / 1000.0;
    out[1] = age_myr / 1000.0 * rel;
}

stellar_params_t derive(calc_t *c, double teff, double logg, double feh, double numax,
                        double numax_err, double dnu, double dnu_err, double prot_d,
                        double prot_err_d) {
    stellar_params_t p = {NAN, NAN, NAN, NAN, "none", NAN, NAN, NAN};
    double rm[4];
    int have_rm = 1;
    if (positive_finite(numax) && positive_finite(dnu) && positive_finite(teff)) {
        seismic(c, numax, numax_err, dnu, dnu_err, teff, TEFF_ERR_DEFAULT, rm);
        p.method = "seismic scaling relations";
    } else if (positive_finite(numax) && positive_finite(teff)) {
        /* numax alone (a red giant's comb too weak for dnu): the seismic log g, far better than a
         * catalogue one (g ~ numax Teff^0.5), into the Torres et al. calibration. */
        c->stage = "seismic log g (numax, Teff)";
        double logg_s = LOGG_SUN + py_log10(c, py_div(c, numax, NUMAX_SUN_UHZ)) +
                        0.5 * py_log10(c, py_div(c, teff, TEFF_SUN_K));
        double rel = isfinite(numax_err) ? py_div(c, numax_err, numax) : 0.05;
        torres2010(c, teff, logg_s, isfinite(feh) ? feh : FEH_DEFAULT, TEFF_ERR_DEFAULT,
                   libm_hypot(py_div(c, rel, libm_log(10.0)), 0.01), rm);
        p.method = "Torres et al. 2010 with the seismic log g (numax, Teff)";
    } else if (positive_finite(teff) && isfinite(logg)) {
        torres2010(c, teff, logg, isfinite(feh) ? feh : FEH_DEFAULT, TEFF_ERR_DEFAULT,
                   LOGG_ERR_DEFAULT, rm);
        p.method = "Torres et al. 2010 (catalogue Teff, log g, [Fe/H])";
    } else {
        have_rm = 0;
    }
    if (have_rm) {
        p.radius_rsun = rm[0];
        p.radius_err_rsun = rm[1];
        p.mass_msun = rm[2];
        p.mass_err_msun = rm[3];
    }
    if (positive_finite(teff)) {
        double g[3];
        gyro_age(c, prot_d, prot_err_d, teff, g);
        p.age_gyr = g[0];
        p.age_err_gyr = g[1];
        p.bv = g[2];
    }
    return p;
}
