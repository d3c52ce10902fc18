//! Server-rendered SVG charts (no JavaScript): horizontal bars with labels, and lines over
//! time; every text escaped.

/// One bar: its label and value.
pub struct Bar {
    pub label: String,
    pub value: i64,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// One bar of a measured quantity (a rate, a number of days): its label, its value, and the
/// value as the chart writes it beside the bar.
pub struct Measure {
    pub label: String,
    pub value: f64,
    pub text: String,
}

/// A horizontal bar chart as an SVG document fragment, with a title for screen readers.
pub fn bar_chart(title: &str, bars: &[Bar]) -> String {
    let rows: Vec<(&str, f64, String)> = bars
        .iter()
        .map(|b| (b.label.as_str(), b.value.max(0) as f64, b.value.to_string()))
        .collect();
    draw("chart-title", title, &rows)
}

/// Like [`bar_chart`], for fractional values written as `text`; `id` names the chart's title
/// element, so several charts on one page each keep their own accessible name.
pub fn measure_chart(id: &str, title: &str, bars: &[Measure]) -> String {
    let rows: Vec<(&str, f64, String)> = bars
        .iter()
        .map(|b| {
            let v = if b.value.is_finite() {
                b.value.max(0.0)
            } else {
                0.0
            };
            (b.label.as_str(), v, b.text.clone())
        })
        .collect();
    draw(id, title, &rows)
}

/// The chart itself: rows of (label, value ≥ 0, the value as written).
fn draw(id: &str, title: &str, bars: &[(&str, f64, String)]) -> String {
    let row = 28;
    let label_w = 260;
    let bar_w = 360;
    let height = row * bars.len().max(1) + 10;
    let max = bars.iter().map(|b| b.1).fold(0.0, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    let id = escape(id);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{id}" viewBox="0 0 {} {height}" width="100%" class="chart"><title id="{id}">{}</title>"#,
        label_w + bar_w + 80,
        escape(title)
    );
    for (i, (label, value, text)) in bars.iter().enumerate() {
        let y = i * row + 5;
        let w = (value / max * bar_w as f64).round() as i64;
        let label: String = label.chars().take(38).collect();
        svg.push_str(&format!(
            r##"<text x="0" y="{}" font-size="13">{}</text><rect x="{label_w}" y="{y}" width="{w}" height="{}" fill="#0b57d0"></rect><text x="{}" y="{}" font-size="13">{}</text>"##,
            y + 17,
            escape(&label),
            row - 8,
            label_w as i64 + w + 6,
            y + 17,
            escape(text)
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// One line of a [`line_chart`]: its name (in the legend), one value per point of the x axis,
/// and how it is drawn. Lines differ by dash pattern as well as by colour, so telling them
/// apart never depends on colour alone.
pub struct Line {
    pub name: String,
    pub values: Vec<i64>,
    pub colour: &'static str,
    pub dashed: bool,
}

/// Points up to this many get a dot each (beyond it the dots would merge into the line).
const DOTS_UP_TO: usize = 62;

/// A line chart as an SVG document fragment: `x` labels the points (first, middle and last are
/// written under the axis), each [`Line`] has one value per label (values below 0 are drawn
/// as 0; missing ones are not drawn). `id` names the title element, as in [`measure_chart`].
pub fn line_chart(id: &str, title: &str, x: &[String], lines: &[Line]) -> String {
    let (left, right, top, bottom) = (56.0, 24.0, 34.0, 40.0);
    let (width, plot_h) = (700.0, 200.0);
    let plot_w = width - left - right;
    let height = top + plot_h + bottom;
    let n = x.len();
    let max = lines
        .iter()
        .flat_map(|l| l.values.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let px = |i: usize| -> f64 {
        if n <= 1 {
            left + plot_w / 2.0
        } else {
            left + plot_w * i as f64 / (n - 1) as f64
        }
    };
    let py = |v: i64| -> f64 { top + plot_h - plot_h * v.clamp(0, max) as f64 / max as f64 };
    let id = escape(id);
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="{id}" viewBox="0 0 {width} {height}" width="100%" class="chart"><title id="{id}">{}</title>"#,
        escape(title)
    );
    // The value axis: 0, the middle and the top, each with a faint grid line.
    let mut ticks = vec![0, max / 2, max];
    ticks.dedup();
    for t in ticks {
        let y = py(t);
        svg.push_str(&format!(
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#d0d7de" stroke-width="1"></line><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end">{t}</text>"##,
            left + plot_w,
            left - 6.0,
            y + 4.0
        ));
    }
    // The time axis: the first, the middle and the last label.
    let mut marks = vec![0, n / 2, n.saturating_sub(1)];
    marks.dedup();
    for i in marks.into_iter().filter(|i| *i < n) {
        let anchor = if n == 1 {
            "middle"
        } else if i == 0 {
            "start"
        } else if i == n - 1 {
            "end"
        } else {
            "middle"
        };
        svg.push_str(&format!(
            r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="{anchor}">{}</text>"#,
            px(i),
            top + plot_h + 18.0,
            escape(&x[i])
        ));
    }
    // The legend, above the plot.
    let mut lx = left;
    for l in lines {
        let dash = if l.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        svg.push_str(&format!(
            r#"<line x1="{lx:.1}" y1="14" x2="{:.1}" y2="14" stroke="{}" stroke-width="3"{dash}></line><text x="{:.1}" y="18" font-size="13">{}</text>"#,
            lx + 28.0,
            escape(l.colour),
            lx + 34.0,
            escape(&l.name)
        ));
        lx += 34.0 + 8.0 * l.name.chars().count() as f64 + 24.0;
    }
    for l in lines {
        let points: Vec<(f64, f64)> = l
            .values
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, v)| (px(i), py(*v)))
            .collect();
        let colour = escape(l.colour);
        let dash = if l.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        if points.len() > 1 {
            let list: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            svg.push_str(&format!(
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2.5"{dash}></polyline>"#,
                list.join(" ")
            ));
        }
        if points.len() <= DOTS_UP_TO {
            for (x, y) in &points {
                svg.push_str(&format!(
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{colour}"></circle>"#
                ));
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_escape_labels_and_scale_bars() {
        let svg = bar_chart(
            "Stock <by> model",
            &[
                Bar {
                    label: "<script>x</script>".into(),
                    value: 10,
                },
                Bar {
                    label: "B".into(),
                    value: 5,
                },
            ],
        );
        assert!(svg.contains("&lt;script&gt;") && !svg.contains("<script>"));
        assert!(svg.contains(r#"width="360""#) && svg.contains(r#"width="180""#));
        assert!(svg.contains("<title id=\"chart-title\">Stock &lt;by&gt; model</title>"));
    }

    #[test]
    fn measured_charts_have_their_own_title_id_and_escape_everything() {
        let svg = measure_chart(
            "rate\"chart",
            "Claims <per> 1,000",
            &[
                Measure {
                    label: "A & B".into(),
                    value: 2.5,
                    text: "2.50 <x>".into(),
                },
                Measure {
                    label: "C".into(),
                    value: 10.0,
                    text: "10.00".into(),
                },
                Measure {
                    label: "D".into(),
                    value: f64::NAN,
                    text: "n/a".into(),
                },
            ],
        );
        assert!(svg.contains(r#"aria-labelledby="rate&quot;chart""#));
        assert!(svg.contains(r#"<title id="rate&quot;chart">Claims &lt;per&gt; 1,000</title>"#));
        assert!(svg.contains("A &amp; B") && svg.contains("2.50 &lt;x&gt;"));
        assert!(svg.contains(r#"width="90""#) && svg.contains(r#"width="360""#));
        assert!(svg.contains(r#"width="0""#));
    }

    #[test]
    fn line_charts_escape_every_text_and_scale_to_the_top_value() {
        let x: Vec<String> = ["2026-05-01", "2026-05-02", "<b>3</b>"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let svg = line_chart(
            "over\"time",
            "Acknowledged & remedied",
            &x,
            &[
                Line {
                    name: "Acknowledged <all>".into(),
                    values: vec![0, 2, 4],
                    colour: "#0b57d0",
                    dashed: true,
                },
                Line {
                    name: "Remedied".into(),
                    values: vec![0, -1, 2],
                    colour: "#1a7f37",
                    dashed: false,
                },
            ],
        );
        assert!(svg.contains(r#"aria-labelledby="over&quot;time""#));
        assert!(svg.contains(r#"<title id="over&quot;time">Acknowledged &amp; remedied</title>"#));
        assert!(svg.contains("Acknowledged &lt;all&gt;") && svg.contains("&lt;b&gt;3&lt;/b&gt;"));
        assert!(!svg.contains("<b>") && !svg.contains("<all>"));
        // The plot runs from x 56 to 676 and from y 234 (0) up to 34 (the top value, 4).
        assert!(
            svg.contains(r#"points="56.0,234.0 366.0,134.0 676.0,34.0""#),
            "{svg}"
        );
        // A value below 0 is drawn at 0; the value axis says 0, 2 and 4.
        assert!(
            svg.contains(r#"points="56.0,234.0 366.0,234.0 676.0,134.0""#),
            "{svg}"
        );
        for t in [">0</text>", ">2</text>", ">4</text>"] {
            assert!(svg.contains(t), "{t}");
        }
        assert_eq!(svg.matches("<circle").count(), 6);
        assert_eq!(
            svg.matches("stroke-dasharray").count(),
            2,
            "legend and line"
        );
    }

    #[test]
    fn a_line_chart_of_one_day_or_nothing_is_still_valid() {
        let one = line_chart(
            "c",
            "t",
            &["2026-05-01".to_owned()],
            &[Line {
                name: "Remedied".into(),
                values: vec![0],
                colour: "#1a7f37",
                dashed: false,
            }],
        );
        assert!(!one.contains("<polyline") && one.contains("<circle"));
        assert!(one.ends_with("</svg>"));
        let none = line_chart("c", "t", &[], &[]);
        assert!(none.starts_with("<svg") && none.ends_with("</svg>"));
        // Long series: no dots, one line.
        let x: Vec<String> = (0..400).map(|i| i.to_string()).collect();
        let long = line_chart(
            "c",
            "t",
            &x,
            &[Line {
                name: "Remedied".into(),
                values: (0..400).collect(),
                colour: "#1a7f37",
                dashed: false,
            }],
        );
        assert_eq!(long.matches("<circle").count(), 0);
        assert_eq!(long.matches("<polyline").count(), 1);
    }
}
