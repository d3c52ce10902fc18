//! Server-rendered SVG charts (no JavaScript): horizontal bars with labels, escaped.

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
}
