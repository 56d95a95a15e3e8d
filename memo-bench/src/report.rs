//! What a run found: the printed table, the raw figures, and the targets.

use serde_json::{Map, Value, json};

/// One line of the table.
struct Row {
    label: String,
    value: String,
    note: String,
}

/// One numbered measurement of the table.
struct Section {
    title: String,
    rows: Vec<Row>,
}

/// Which side of the target a measurement must be on.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    AtLeast,
    AtMost,
}

/// A target from issue 5 and what this run measured for it.
struct Target {
    name: String,
    measured: f64,
    goal: Goal,
    target: f64,
}

impl Target {
    fn met(&self) -> bool {
        match self.goal {
            Goal::AtLeast => self.measured >= self.target,
            Goal::AtMost => self.measured <= self.target,
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "measured": self.measured,
            "target": self.target,
            "met": self.met(),
            "comparison": match self.goal { Goal::AtLeast => ">=", Goal::AtMost => "<=" },
        })
    }
}

/// Everything a run reports, in the order it was measured.
#[derive(Default)]
pub struct Report {
    sections: Vec<Section>,
    figures: Map<String, Value>,
    targets: Vec<Target>,
}

impl Report {
    /// Starts a new numbered measurement of the table.
    pub fn section(&mut self, title: impl Into<String>) {
        self.sections.push(Section {
            title: title.into(),
            rows: Vec::new(),
        });
    }

    /// Adds a line to the current measurement.
    pub fn row(&mut self, label: impl Into<String>, value: impl Into<String>, note: impl Into<String>) {
        let section = self.sections.last_mut().expect("a row belongs to a section");
        section.rows.push(Row {
            label: label.into(),
            value: value.into(),
            note: note.into(),
        });
    }

    /// Records the raw figures of one measurement for the JSON output.
    pub fn figures(&mut self, key: &str, figures: Value) {
        self.figures.insert(key.to_owned(), figures);
    }

    /// Records a target and what was measured for it.
    pub fn target(&mut self, name: impl Into<String>, measured: f64, goal: Goal, target: f64) {
        self.targets.push(Target {
            name: name.into(),
            measured,
            goal,
            target,
        });
    }

    /// The table, as printed.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for section in &self.sections {
            out.push_str(&format!("\n{}\n", section.title));
            for row in &section.rows {
                out.push_str(format!("  {:<48} {:>18}  {}", row.label, row.value, row.note).trim_end());
                out.push('\n');
            }
        }
        out.push_str("\nTargets\n");
        for target in &self.targets {
            let (mark, op) = match (target.met(), target.goal) {
                (true, Goal::AtLeast) => ("met    ", ">="),
                (false, Goal::AtLeast) => ("NOT MET", ">="),
                (true, Goal::AtMost) => ("met    ", "<="),
                (false, Goal::AtMost) => ("NOT MET", "<="),
            };
            out.push_str(&format!(
                "  [{mark}] {:<58} {:>9.2} (target {op} {})\n",
                target.name, target.measured, target.target
            ));
        }
        out
    }

    /// The JSON output: the run's settings, the raw figures, and the targets.
    pub fn to_json(&self, settings: Value) -> Value {
        json!({
            "settings": settings,
            "figures": self.figures,
            "targets": self.targets.iter().map(Target::to_json).collect::<Vec<_>>(),
        })
    }
}
