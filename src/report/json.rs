//! `report.json`: the whole [`RunReport`](super::RunReport), stable and documented.

use super::RunReport;

pub fn render(report: &RunReport) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("the report serialises");
    text.push('\n');
    text
}
