/* SVG plots for the run report: histograms of one or two series (overlaid, with a legend) and
 * horizontal bar charts. Sized to be read without zooming (640 px wide, 13 px text). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run_internal.h"

static const char *colors[] = {"#3b6ea8", "#d9822b", "#4b9b5a", "#b04a6a"};

void sq_svg_escape(sq_buf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': sq_buf_puts(b, "&lt;"); break;
        case '>': sq_buf_puts(b, "&gt;"); break;
        case '&': sq_buf_puts(b, "&amp;"); break;
        case '"': sq_buf_puts(b, "&quot;"); break;
        default: sq_buf_append(b, s, 1);
        }
    }
}

static void tick_label(char *out, size_t n, double v) {
    if (fabs(v) >= 10000) snprintf(out, n, "%.0fk", v / 1000);
    else if (fabs(v) >= 100 || v == floor(v)) snprintf(out, n, "%.0f", v);
    else snprintf(out, n, "%.2g", v);
}

void sq_svg_histogram(sq_buf *b, const char *title, const char *xlabel, const sq_svg_series *series, int nseries,
                      int nbins, int density) {
    double lo = INFINITY, hi = -INFINITY;
    for (int s = 0; s < nseries; s++)
        for (size_t i = 0; i < series[s].n; i++) {
            double v = series[s].v[i];
            if (!isfinite(v)) continue;
            lo = fmin(lo, v);
            hi = fmax(hi, v);
        }
    /* the legend sits between the title and the plot, so it never hides a bar */
    const int W = 640, L = 60, R = 20, B = 48, T = 36 + 17 * (nseries > 1 ? nseries : 1), H = 250 + T;
    sq_buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">", W, H, W, H);
    sq_buf_printf(b, "<text x=\"%d\" y=\"20\" font-size=\"15\" font-weight=\"bold\">", L);
    sq_svg_escape(b, title);
    sq_buf_puts(b, "</text>");
    if (!isfinite(lo)) {
        sq_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"13\" fill=\"#777\">no data</text></svg>", L, H / 2);
        return;
    }
    if (hi <= lo) hi = lo + 1;
    if (nbins < 1) nbins = 20;
    double *counts = calloc((size_t)nbins * (size_t)(nseries ? nseries : 1), sizeof *counts), ymax = 0;
    if (!counts) {
        sq_buf_puts(b, "</svg>");
        return;
    }
    for (int s = 0; s < nseries; s++) {
        size_t tot = 0;
        for (size_t i = 0; i < series[s].n; i++) {
            double v = series[s].v[i];
            if (!isfinite(v)) continue;
            int k = (int)((v - lo) / (hi - lo) * nbins);
            if (k >= nbins) k = nbins - 1;
            if (k < 0) k = 0;
            counts[s * nbins + k] += 1;
            tot++;
        }
        for (int k = 0; k < nbins; k++) {
            if (density && tot) counts[s * nbins + k] /= (double)tot;
            ymax = fmax(ymax, counts[s * nbins + k]);
        }
    }
    if (ymax <= 0) ymax = 1;
    double pw = W - L - R, ph = H - T - B, bw = pw / nbins;
    /* axes, y ticks */
    sq_buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>", L, H - B, W - R, H - B);
    sq_buf_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>", L, T, L, H - B);
    for (int t = 0; t <= 4; t++) {
        double v = ymax * t / 4, y = H - B - ph * t / 4;
        char lab[32];
        if (density) snprintf(lab, sizeof lab, "%.0f%%", v * 100);
        else tick_label(lab, sizeof lab, v);
        sq_buf_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e3e3e3\"/>", L + 1, y, W - R, y);
        sq_buf_printf(b, "<text x=\"%d\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">%s</text>", L - 6, y + 4, lab);
    }
    for (int t = 0; t <= 5; t++) {
        double v = lo + (hi - lo) * t / 5, x = L + pw * t / 5;
        char lab[32];
        tick_label(lab, sizeof lab, v);
        sq_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%s</text>", x, H - B + 16, lab);
    }
    sq_buf_printf(b, "<text x=\"%.1f\" y=\"%d\" font-size=\"13\" text-anchor=\"middle\">", L + pw / 2, H - 10);
    sq_svg_escape(b, xlabel);
    sq_buf_puts(b, "</text>");
    for (int s = 0; s < nseries; s++) {
        double sw = nseries > 1 ? bw / nseries : bw;
        for (int k = 0; k < nbins; k++) {
            double c = counts[s * nbins + k], h = ph * c / ymax;
            if (c <= 0) continue;
            sq_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"0.85\"/>",
                          L + k * bw + s * sw + 0.5, H - B - h, fmax(sw - 1, 1), h, colors[s % 4]);
        }
        char lab[200];
        snprintf(lab, sizeof lab, "%s (n=%zu)", series[s].name, series[s].n);
        sq_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/>", W - R - 250, 28 + s * 17,
                      colors[s % 4]);
        sq_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"12\">", W - R - 233, 28 + s * 17 + 11);
        sq_svg_escape(b, lab);
        sq_buf_puts(b, "</text>");
    }
    free(counts);
    sq_buf_puts(b, "</svg>");
}

void sq_svg_bars(sq_buf *b, const char *title, const char *const *labels, const double *values, int n,
                 const char *unit) {
    const int W = 640, L = 190, R = 80, row = 24, T = 34;
    int H = T + row * (n ? n : 1) + 14;
    double vmax = 0;
    for (int i = 0; i < n; i++) vmax = fmax(vmax, values[i]);
    if (vmax <= 0) vmax = 1;
    sq_buf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">", W, H, W, H);
    sq_buf_printf(b, "<text x=\"10\" y=\"20\" font-size=\"15\" font-weight=\"bold\">");
    sq_svg_escape(b, title);
    sq_buf_puts(b, "</text>");
    if (!n) sq_buf_printf(b, "<text x=\"%d\" y=\"%d\" font-size=\"13\" fill=\"#777\">no data</text>", L, T + 16);
    for (int i = 0; i < n; i++) {
        double w = (W - L - R) * values[i] / vmax, y = T + i * row;
        sq_buf_printf(b, "<text x=\"%d\" y=\"%.1f\" font-size=\"13\" text-anchor=\"end\">", L - 8, y + 15);
        sq_svg_escape(b, labels[i]);
        sq_buf_puts(b, "</text>");
        sq_buf_printf(b, "<rect x=\"%d\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>", L, y + 3, fmax(w, 1),
                      row - 6, colors[0]);
        char lab[64];
        if (values[i] == floor(values[i])) snprintf(lab, sizeof lab, "%.0f%s", values[i], unit);
        else snprintf(lab, sizeof lab, "%.3g%s", values[i], unit);
        sq_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\">%s</text>", L + fmax(w, 1) + 6, y + 15, lab);
    }
    sq_buf_puts(b, "</svg>");
}
