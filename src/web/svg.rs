//! Server-side SVG charts (pure): numbers in, markup out, so the page needs
//! no script and no CDN and the Content-Security-Policy stays strict. Only
//! numbers, fixed words and escaped labels go into the markup.
//!
//! Every chart has its axes labelled: time in UTC along the bottom (ticks at
//! round hours, days or months, whichever fit), values with their unit up the
//! side (ticks at round numbers from zero).

use std::fmt::Write;

/// Series colours (also `.c0`…`.c7` in style.css, for the HTML legends).
pub const COLOURS: [&str; 8] = [
    "#1f5fbf", "#b35806", "#1b7f3b", "#7b3294", "#c51b7d", "#35978f", "#8c510a", "#4d4d4d",
];

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<'a> {
    /// Shown in the tooltips (escaped).
    pub label: &'a str,
    /// (Unix time, value), oldest first.
    pub points: &'a [(i64, f64)],
    /// A threshold to draw as a dashed line in the series' colour.
    pub threshold: Option<f64>,
}

/// A marked span of time (a spike, from its event to its clearing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Start.
    pub from: i64,
    /// End; `None` while it lasts.
    pub to: Option<i64>,
    /// Tooltip (escaped).
    pub label: String,
}

/// A listing period on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    /// Row label (the list; escaped).
    pub row: String,
    /// Start.
    pub from: i64,
    /// End; `None` while listed.
    pub to: Option<i64>,
}

const FONT: f64 = 14.0;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn utc(t: i64, fmt: &str) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format(fmt).to_string())
        .unwrap_or_default()
}

/// Round ticks over [since, until] (at most `max` of them) with their labels.
pub fn time_ticks(since: i64, until: i64, max: usize) -> Vec<(i64, String)> {
    const STEPS: [i64; 16] = [
        300,
        900,
        1800,
        3600,
        2 * 3600,
        3 * 3600,
        6 * 3600,
        12 * 3600,
        86_400,
        2 * 86_400,
        7 * 86_400,
        14 * 86_400,
        30 * 86_400,
        91 * 86_400,
        182 * 86_400,
        365 * 86_400,
    ];
    let span = (until - since).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s < max.max(1) as i64)
        .unwrap_or(365 * 86_400);
    let fmt = if step < 86_400 {
        "%H:%M"
    } else if step < 30 * 86_400 {
        "%b %d"
    } else {
        "%Y-%m"
    };
    let mut t = since - since.rem_euclid(step) + if since % step == 0 { 0 } else { step };
    let mut out = Vec::new();
    while t <= until && out.len() < 2 * max {
        let label = if step < 86_400 && t.rem_euclid(86_400) == 0 {
            utc(t, "%b %d") // midnight: the date, so a 24 h axis says which day
        } else {
            utc(t, fmt)
        };
        out.push((t, label));
        t += step;
    }
    out
}

/// A round axis top and step for values up to `max` (from zero).
pub fn value_axis(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        1.0
    };
    let raw = max / 4.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

/// A value for an axis label: `1.5k`, `250`, `0.25`.
pub fn fmt_value(v: f64) -> String {
    let a = v.abs();
    let (x, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let s = format!("{x:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{suffix}")
}

/// How wide a chart is drawn and how many time ticks it gets. A page carries
/// each chart twice, [`WIDE`] and [`NARROW`], and its stylesheet shows the
/// one that fits (no script runs on the pages): an SVG scales with its box,
/// so one drawing 640 units wide would shrink its 13-unit text to 7 px on a
/// phone. Drawn about as wide as it is shown, text keeps its size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layout {
    /// Width in SVG units.
    pub w: f64,
    /// Time ticks at most.
    pub ticks: usize,
    /// The class the stylesheet switches on.
    pub class: &'static str,
}

/// For screens wider than a phone.
pub const WIDE: Layout = Layout {
    w: 640.0,
    ticks: 6,
    class: "wide",
};

/// For phones (up to 600 px).
pub const NARROW: Layout = Layout {
    w: 340.0,
    ticks: 5,
    class: "narrow",
};

/// The colour of series `i`: eight that print and read well, then hues a
/// golden angle apart (alternating lightness), so 25 lines of one source
/// never share a colour.
pub fn colour(i: usize) -> String {
    match COLOURS.get(i) {
        Some(c) => (*c).to_string(),
        None => {
            let hue = (i as f64 * 137.508).rem_euclid(360.0);
            let light = if i.is_multiple_of(2) { 35 } else { 48 };
            format!("hsl({hue:.0}, 70%, {light}%)")
        }
    }
}

/// A small square of a series' colour for HTML legends (an SVG attribute,
/// since the Content-Security-Policy forbids inline styles).
pub fn swatch(i: usize) -> String {
    format!(
        r#"<svg class="swatch" xmlns="http://www.w3.org/2000/svg" width="18" height="6" aria-hidden="true"><rect width="18" height="6" rx="2" fill="{}"/></svg>"#,
        colour(i)
    )
}

/// A chart's geometry: where time and values fall.
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    ph: f64,
    since: i64,
    until: i64,
    ymax: f64,
}

impl Frame {
    fn x(&self, t: i64) -> f64 {
        let span = (self.until - self.since).max(1) as f64;
        let pw = self.w - self.left - self.right;
        self.left + ((t.clamp(self.since, self.until) - self.since) as f64 / span) * pw
    }

    fn y(&self, v: f64) -> f64 {
        self.top + self.ph - (v.max(0.0) / self.ymax).min(1.05) * self.ph
    }
}

/// A line chart: one or more series sharing a unit, each with its threshold,
/// spike windows shaded, a time axis (UTC) and a value axis with the unit;
/// drawn at both layouts (see [`Layout`]).
pub fn line_chart(
    series: &[Series<'_>],
    unit: &str,
    since: i64,
    until: i64,
    windows: &[Window],
) -> String {
    let chart = LineChart {
        series,
        unit,
        since,
        until,
        windows,
    };
    [WIDE, NARROW].iter().map(|l| chart.draw(*l)).collect()
}

/// What a [`line_chart`] shows, drawn once per layout.
#[derive(Clone, Copy)]
struct LineChart<'a> {
    series: &'a [Series<'a>],
    unit: &'a str,
    since: i64,
    until: i64,
    windows: &'a [Window],
}

impl LineChart<'_> {
    /// One layout of [`line_chart`].
    fn draw(&self, layout: Layout) -> String {
        let LineChart {
            series,
            unit,
            since,
            until,
            windows,
        } = *self;
        let ymax_data = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1).chain(s.threshold))
            .fold(0.0f64, f64::max);
        let (ymax, ystep) = value_axis(ymax_data * 1.05);
        let f = Frame {
            w: layout.w,
            h: 250.0,
            left: 58.0,
            right: 14.0,
            top: 14.0,
            ph: 250.0 - 14.0 - 42.0,
            since,
            until,
            ymax,
        };
        let mut s = String::with_capacity(4096);
        let _ = write!(
            s,
            r#"<svg class="chart {}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" role="img" aria-label="{} over time" font-family="system-ui, sans-serif" font-size="{FONT}">"#,
            layout.class,
            f.w,
            f.h,
            escape(unit)
        );
        let _ = write!(
            s,
            r##"<rect x="0" y="0" width="{}" height="{}" fill="#fff"/>"##,
            f.w, f.h
        );
        // spike windows first, under everything
        for w in windows {
            let (a, b) = (f.x(w.from), f.x(w.to.unwrap_or(until)));
            let _ = write!(
                s,
                r##"<rect class="spike" x="{a:.1}" y="{}" width="{:.1}" height="{}" fill="#b3261e" fill-opacity="0.13"><title>{}</title></rect>"##,
                f.top,
                (b - a).max(2.0),
                f.ph,
                escape(&w.label)
            );
        }
        value_axis_marks(&mut s, &f, ystep, unit);
        time_axis_marks(&mut s, &f, layout.ticks);
        series_marks(&mut s, &f, series);
        s.push_str("</svg>");
        s
    }
}

/// Grid lines and labels up the side, the unit along it.
fn value_axis_marks(s: &mut String, f: &Frame, ystep: f64, unit: &str) {
    let mut v = 0.0;
    while v <= f.ymax + ystep / 2.0 {
        let yy = f.y(v);
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e4e4e4"/><text class="ytick" x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            f.left,
            f.w - f.right,
            f.left - 6.0,
            yy + 4.0,
            fmt_value(v)
        );
        v += ystep;
    }
    let mid = f.top + f.ph / 2.0;
    let _ = write!(
        s,
        r##"<text class="unit" x="14" y="{mid:.1}" transform="rotate(-90 14 {mid:.1})" text-anchor="middle" fill="#333">{}</text>"##,
        escape(unit)
    );
}

/// The time axis along the bottom, ticks at round times.
fn time_axis_marks(s: &mut String, f: &Frame, ticks: usize) {
    let base = f.top + f.ph;
    let _ = write!(
        s,
        r##"<line x1="{}" y1="{base}" x2="{:.1}" y2="{base}" stroke="#888"/>"##,
        f.left,
        f.w - f.right
    );
    for (t, label) in time_ticks(f.since, f.until, ticks) {
        let xx = f.x(t);
        let _ = write!(
            s,
            r##"<line x1="{xx:.1}" y1="{}" x2="{xx:.1}" y2="{:.1}" stroke="#eee"/><line x1="{xx:.1}" y1="{base}" x2="{xx:.1}" y2="{:.1}" stroke="#888"/><text class="xtick" x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{label}</text>"##,
            f.top,
            base,
            base + 4.0,
            base + 18.0
        );
    }
    let _ = write!(
        s,
        r##"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="end" fill="#777">time (UTC)</text>"##,
        f.w - f.right,
        f.h - 4.0
    );
}

/// Thresholds (dashed, in their series' colour), then the lines.
fn series_marks(s: &mut String, f: &Frame, series: &[Series<'_>]) {
    for (i, se) in series.iter().enumerate() {
        let c = colour(i);
        if let Some(t) = se.threshold {
            let yy = f.y(t);
            let _ = write!(
                s,
                r##"<line class="threshold" x1="{}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{c}" stroke-width="1.5" stroke-dasharray="6,4"><title>{} threshold {}</title></line><text x="{:.1}" y="{:.1}" text-anchor="end" fill="{c}">threshold {}</text>"##,
                f.left,
                f.w - f.right,
                escape(se.label),
                fmt_value(t),
                f.w - f.right - 2.0,
                yy - 4.0,
                fmt_value(t)
            );
        }
    }
    for (i, se) in series.iter().enumerate() {
        let c = colour(i);
        let inside: Vec<&(i64, f64)> = se
            .points
            .iter()
            .filter(|p| p.0 >= f.since && p.0 <= f.until && p.1.is_finite())
            .collect();
        match inside.as_slice() {
            [] => {}
            [p] => {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{c}"><title>{}: {}</title></circle>"#,
                    f.x(p.0),
                    f.y(p.1),
                    escape(se.label),
                    fmt_value(p.1)
                );
            }
            pts => {
                let _ = write!(
                    s,
                    r#"<polyline class="series" fill="none" stroke="{c}" stroke-width="2" stroke-linejoin="round" points=""#
                );
                for p in pts {
                    let _ = write!(s, "{:.1},{:.1} ", f.x(p.0), f.y(p.1));
                }
                let _ = write!(s, r#""><title>{}</title></polyline>"#, escape(se.label));
            }
        }
    }
}

/// A sparkline: the shape of one series (no axes), its threshold dotted.
pub fn sparkline(points: &[(i64, f64)], since: i64, until: i64, threshold: Option<f64>) -> String {
    let (w, h, pad) = (120.0, 28.0, 2.0);
    let span = (until - since).max(1) as f64;
    let max = points
        .iter()
        .map(|p| p.1)
        .chain(threshold)
        .fold(0.0f64, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let x = |t: i64| pad + ((t.clamp(since, until) - since) as f64 / span) * (w - 2.0 * pad);
    let y = |v: f64| h - pad - (v.max(0.0) / max) * (h - 2.0 * pad);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="spark" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="last 24 hours">"#
    );
    if let Some(t) = threshold {
        let _ = write!(
            s,
            r##"<line x1="0" y1="{0:.1}" x2="{w}" y2="{0:.1}" stroke="#a15c00" stroke-dasharray="2,2"/>"##,
            y(t)
        );
    }
    if points.len() == 1 {
        let _ = write!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="2" fill="#1f5fbf"/>"##,
            x(points[0].0),
            y(points[0].1)
        );
    } else if !points.is_empty() {
        s.push_str(r##"<polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" points=""##);
        for &(t, v) in points {
            let _ = write!(s, "{:.1},{:.1} ", x(t), y(v));
        }
        s.push_str(r#""/>"#);
    }
    s.push_str("</svg>");
    s
}

/// A timeline of listing periods: one row per period, its list on the left,
/// its start and end written on the right (above the bar on a phone), a time
/// axis (UTC) underneath and a line at `until` (now); at both layouts.
pub fn timeline(periods: &[Period], since: i64, until: i64) -> String {
    [WIDE, NARROW]
        .iter()
        .map(|l| timeline_at(*l, periods, since, until))
        .collect()
}

/// One layout of [`timeline`].
pub fn timeline_at(layout: Layout, periods: &[Period], since: i64, until: i64) -> String {
    let narrow = layout == NARROW;
    let w = layout.w;
    // a phone's row is two lines: the words, then the bar under them
    let (row, label_w, text_w, top) = if narrow {
        (40.0, 8.0, 8.0, 8.0)
    } else {
        (24.0, 130.0, 215.0, 8.0)
    };
    let axis = 40.0;
    let h = top + row * periods.len() as f64 + axis;
    let (x0, x1) = (label_w, w - text_w);
    let span = (until - since).max(1) as f64;
    let x = |t: i64| x0 + ((t.clamp(since, until) - since) as f64 / span) * (x1 - x0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart {}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h:.0}" role="img" aria-label="listing periods" font-family="system-ui, sans-serif" font-size="{FONT}">"#,
        layout.class
    );
    let _ = write!(
        s,
        r##"<rect x="0" y="0" width="{w}" height="{h:.0}" fill="#fff"/>"##
    );
    let base = top + row * periods.len() as f64;
    let ticks = time_ticks(since, until, layout.ticks - 1);
    for (t, _) in &ticks {
        let _ = write!(
            s,
            r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{base:.1}" stroke="#eee"/>"##,
            x(*t)
        );
    }
    let short = |t: i64| utc(t, "%b %d %H:%M");
    for (i, p) in periods.iter().enumerate() {
        let yy = top + i as f64 * row;
        let bar_y = if narrow { yy + 20.0 } else { yy + 4.0 };
        let (a, b) = (x(p.from), x(p.to.unwrap_or(until)));
        let end = p.to.map_or_else(|| "still listed".to_string(), short);
        let _ = write!(
            s,
            r##"<text x="4" y="{:.1}" fill="#222">{}</text>"##,
            yy + 15.0,
            escape(&truncate(&p.row, if narrow { 14 } else { 17 }))
        );
        let _ = write!(
            s,
            r##"<rect class="period" x="{a:.1}" y="{bar_y:.1}" width="{:.1}" height="16" fill="{}" rx="2"><title>{}: {} → {}</title></rect>"##,
            (b - a).max(3.0),
            if p.to.is_some() { "#d9827c" } else { "#b3261e" },
            escape(&p.row),
            utc(p.from, "%Y-%m-%d %H:%M UTC"),
            p.to.map_or_else(
                || "still listed".to_string(),
                |t| utc(t, "%Y-%m-%d %H:%M UTC")
            )
        );
        let (tx, anchor) = if narrow {
            (w - 4.0, "end")
        } else {
            (x1 + 8.0, "start")
        };
        let _ = write!(
            s,
            r##"<text class="span" x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" fill="#444" font-size="12">{} → {end}</text>"##,
            yy + 15.0,
            short(p.from)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{x0}" y1="{base:.1}" x2="{x1}" y2="{base:.1}" stroke="#888"/>"##
    );
    for (t, label) in &ticks {
        let xx = x(*t);
        let _ = write!(
            s,
            r##"<line x1="{xx:.1}" y1="{base:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#888"/><text class="xtick" x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#555">{label}</text>"##,
            base + 4.0,
            base + 18.0
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{0:.1}" y1="{top}" x2="{0:.1}" y2="{base:.1}" stroke="#333" stroke-dasharray="3,3"><title>now</title></line><text class="axis" x="{1:.1}" y="{2:.1}" text-anchor="end" fill="#777">time (UTC)</text>"##,
        x(until),
        x1,
        h - 4.0
    );
    s.push_str("</svg>");
    s
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    // 2026-11-23 00:00:00 UTC
    const T0: i64 = 1_795_392_000;

    #[test]
    fn time_ticks_are_round_and_labelled() {
        let t = time_ticks(T0 + 600, T0 + DAY + 600, 6);
        assert!(t.len() >= 4 && t.len() <= 12, "{t:?}");
        assert!(t.iter().all(|(x, _)| x % (3 * 3600) == 0), "{t:?}");
        assert!(t.iter().any(|(_, l)| l == "06:00"), "{t:?}");
        assert!(
            t.iter().any(|(_, l)| l == "Nov 24"),
            "midnight shows the date: {t:?}"
        );
        let week = time_ticks(T0, T0 + 7 * DAY, 6);
        assert!(
            week.iter()
                .all(|(_, l)| l.starts_with("Nov") || l.starts_with("Dec")),
            "{week:?}"
        );
        let year = time_ticks(T0 - 365 * DAY, T0, 6);
        assert!(year.iter().all(|(_, l)| l.len() == 7), "{year:?}");
    }

    /// Issue 22: 25 series of one source reused eight colours.
    #[test]
    fn every_series_has_its_own_colour() {
        let all: std::collections::HashSet<String> = (0..40).map(colour).collect();
        assert_eq!(all.len(), 40);
        assert!(swatch(30).contains(&colour(30)));
    }

    #[test]
    fn value_axes_are_round() {
        assert_eq!(value_axis(0.0), (1.0, 0.25));
        assert_eq!(value_axis(10.5), (15.0, 5.0));
        assert_eq!(value_axis(97.0), (100.0, 25.0));
        assert_eq!(fmt_value(1500.0), "1500");
        assert_eq!(fmt_value(15000.0), "15k");
        assert_eq!(fmt_value(0.25), "0.25");
        assert_eq!(fmt_value(2.0), "2");
    }

    #[test]
    fn charts_have_axes_units_thresholds_windows_and_escape_labels() {
        let a = [(T0 + 3600, 1.0), (T0 + 7200, 12.0)];
        let b = [(T0 + 3600, 3.0)];
        let c = line_chart(
            &[
                Series {
                    label: "queue_depth",
                    points: &a,
                    threshold: Some(10.0),
                },
                Series {
                    label: "<b>x</b>",
                    points: &b,
                    threshold: None,
                },
            ],
            "messages",
            T0,
            T0 + DAY,
            &[Window {
                from: T0 + 7000,
                to: None,
                label: "ndr_spike <now>".into(),
            }],
        );
        assert!(c.starts_with("<svg") && c.ends_with("</svg>"), "{c}");
        assert_eq!(c.matches("<svg").count(), 2, "a wide and a narrow drawing");
        assert!(c.contains(r#"class="chart wide""#) && c.contains(r#"class="chart narrow""#));
        assert!(c.contains(">messages</text>") && c.contains(">time (UTC)</text>"));
        assert!(c.contains(">06:00</text>") && c.contains(">threshold 10</text>"));
        assert!(c.contains(r#"class="spike""#) && c.contains("ndr_spike &lt;now&gt;"));
        assert!(c.contains("&lt;b&gt;x&lt;/b&gt;") && !c.contains("<b>"));
        assert!(c.contains("polyline") && c.contains("<circle"));
        let t = timeline(
            &[Period {
                row: "<script>".into(),
                from: T0 + 3600,
                to: Some(T0 + 5 * 3600),
            }],
            T0,
            T0 + DAY,
        );
        assert!(t.contains("&lt;script&gt;") && !t.contains("<script>"));
        assert!(t.contains("Nov 23 01:00 → Nov 23 05:00"), "{t}");
        assert!(
            t.contains(">time (UTC)</text>") && t.contains(">06:00</text>"),
            "{t}"
        );
        assert!(t.contains(r#"class="chart narrow""#), "{t}");
        let s = sparkline(&a, T0, T0 + DAY, Some(10.0));
        assert!(s.contains("polyline") && s.contains("stroke-dasharray"));
    }
}
