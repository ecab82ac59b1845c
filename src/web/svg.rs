//! Server-side SVG charts (pure): numbers in, markup out. Only numbers and
//! escaped labels go into the markup.

use std::fmt::Write;

/// A line chart of `points` over [since, until], with an optional threshold line and spike marks.
pub fn line_chart(
    points: &[(i64, f64)],
    since: i64,
    until: i64,
    threshold: Option<f64>,
    marks: &[i64],
) -> String {
    let (w, h, pad) = (800.0, 180.0, 30.0);
    let span = (until - since).max(1) as f64;
    let ymax = points
        .iter()
        .map(|p| p.1)
        .chain(threshold)
        .fold(1.0f64, f64::max)
        * 1.1;
    let x = |t: i64| pad + (t - since) as f64 / span * (w - 2.0 * pad);
    let y = |v: f64| h - pad - v / ymax * (h - 2.0 * pad);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img">"#
    );
    let _ = write!(
        s,
        r##"<rect x="0" y="0" width="{w}" height="{h}" fill="#fff"/>"##
    );
    let _ = write!(
        s,
        r##"<line x1="{pad}" y1="{}" x2="{}" y2="{}" stroke="#999"/>"##,
        h - pad,
        w - pad,
        h - pad
    );
    let _ = write!(
        s,
        r##"<text x="2" y="{}" font-size="10" fill="#666">{:.0}</text>"##,
        pad,
        ymax / 1.1
    );
    let _ = write!(
        s,
        r##"<text x="2" y="{}" font-size="10" fill="#666">0</text>"##,
        h - pad
    );
    for &m in marks {
        if m >= since && m <= until {
            let _ = write!(
                s,
                r##"<line x1="{0:.1}" y1="{pad}" x2="{0:.1}" y2="{1}" stroke="#b3261e" stroke-dasharray="3,3"><title>spike</title></line>"##,
                x(m),
                h - pad
            );
        }
    }
    if let Some(t) = threshold {
        let _ = write!(
            s,
            r##"<line x1="{pad}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#a15c00" stroke-dasharray="6,4"><title>threshold {t}</title></line>"##,
            y(t),
            w - pad
        );
    }
    if !points.is_empty() {
        s.push_str(r##"<polyline fill="none" stroke="#1f5fbf" stroke-width="1.5" points=""##);
        for &(t, v) in points {
            let _ = write!(s, "{:.1},{:.1} ", x(t), y(v));
        }
        s.push_str(r#""/>"#);
    }
    s.push_str("</svg>");
    s
}

/// A timeline of listing periods: one bar per period on [since, until].
pub fn timeline(periods: &[(String, i64, Option<i64>)], since: i64, until: i64) -> String {
    let (w, row, pad) = (800.0, 18.0, 120.0);
    let h = row * periods.len() as f64 + 20.0;
    let span = (until - since).max(1) as f64;
    let x = |t: i64| pad + ((t.clamp(since, until) - since) as f64 / span) * (w - pad - 10.0);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img">"#
    );
    for (i, (label, a, b)) in periods.iter().enumerate() {
        let yy = 10.0 + i as f64 * row;
        let _ = write!(
            s,
            r##"<text x="2" y="{:.1}" font-size="11">{}</text>"##,
            yy + 12.0,
            escape(label)
        );
        let x2 = x(b.unwrap_or(until));
        let _ = write!(
            s,
            r##"<rect x="{:.1}" y="{yy:.1}" width="{:.1}" height="{}" fill="#b3261e"/>"##,
            x(*a),
            (x2 - x(*a)).max(2.0),
            row - 4.0
        );
    }
    s.push_str("</svg>");
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    #[test]
    fn charts_are_svg_and_escape_labels() {
        let c = super::line_chart(&[(0, 1.0), (50, 10.0)], 0, 100, Some(5.0), &[50]);
        assert!(c.starts_with("<svg") && c.ends_with("</svg>") && c.contains("polyline"));
        let t = super::timeline(&[("<script>".into(), 10, None)], 0, 100);
        assert!(t.contains("&lt;script&gt;") && !t.contains("<script>"));
    }
}
