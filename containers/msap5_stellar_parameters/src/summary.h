/* <chunk_id>.parameters.summary.json: byte for byte what stellarflow_contracts.chunk.summarise
 * + json.dumps(indent=1, ensure_ascii=False) write for the same chunk file. */
#ifndef MSAP5_SUMMARY_H
#define MSAP5_SUMMARY_H

#include <stddef.h>
#include <stdio.h>

#define N_RESULTS 8
extern const char *const RESULT_NAMES[N_RESULTS]; /* float64 attrs of an ok star */

typedef struct {
    char *id;
    int ok;
    char *error;                 /* "" when ok */
    double values[N_RESULTS];    /* in the order of RESULT_NAMES */
    const char *method;          /* parameters_method */
} star_result_t;

/* 4 significant digits as Python's float(f"{v:.4g}"), printed as json.dumps prints a float
 * (repr; NaN -> null, as summarise makes it). `out` needs 32 bytes. */
void json_number4(double v, char *out, size_t out_len);
void json_string(FILE *f, const char *s);

/* 0 on success, -1 with errno set. */
int write_summary(const char *path, const char *chunk_id, const char *stage, const char *module,
                  const char *version, const star_result_t *stars, size_t n);

#endif
