//! What the explorer does with directions beyond turning the dial: directions that wait for
//! the model's attributes, the plane's axes, the presets a model comes with, and taking a
//! gating model's own direction.

use std::time::Instant;

use crate::model::known::{self, KnownPreset, PresetSpec};
use crate::preference::{self, Direction, Preset};

use super::explorer::Explorer;
use super::state::{DialMode, ModelState};

/// A known model's preset as a direction.
pub fn preset(p: &KnownPreset) -> Preset {
    let direction = match p.spec {
        PresetSpec::Angle(degrees) => Direction::angle(degrees),
        PresetSpec::PlaneVector(x, y) => Direction::angle(preference::angle_of(x, y)),
        PresetSpec::Weights(w) => Direction::Weights {
            weights: w.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        },
    };
    Preset {
        name: p.name.to_string(),
        direction,
    }
}

/// The presets that come with a model with `labels`: its authors' own, then shared ones.
pub fn builtin_presets(labels: &[String]) -> Vec<Preset> {
    known::presets_for(labels).iter().map(preset).collect()
}

impl Explorer {
    /// Turns the dial to `direction`, or keeps it for the model that is loading when it names
    /// attributes the current ones lack. False when it fits no model in sight.
    pub(crate) fn take_direction(&mut self, direction: &Direction) -> bool {
        if self.dial.set_direction(direction, &self.labels) {
            self.pending_direction = None;
            true
        } else if self.model != ModelState::Ready {
            self.pending_direction = Some(direction.clone());
            true
        } else {
            false
        }
    }

    /// The model's presets first, then the user's own (marked `true`).
    pub fn preset_list(&self) -> Vec<(Preset, bool)> {
        builtin_presets(&self.labels)
            .into_iter()
            .map(|p| (p, false))
            .chain(self.presets.list.iter().cloned().map(|p| (p, true)))
            .collect()
    }

    /// After an axis moved (or could not): say which plane the dial is in now.
    pub(crate) fn axes_moved(&mut self, moved: bool, now: Instant) {
        if !moved {
            self.set_flash(
                "this model has no plane of two attributes to choose".into(),
                false,
                now,
            );
            return;
        }
        let plane = self
            .plane_names()
            .map(|(x, y)| format!("plane {x} × {y}"))
            .unwrap_or_default();
        // In weights mode the plane is only what the charts draw: R keeps the weights.
        let note = match self.dial.mode {
            DialMode::Angle => plane,
            DialMode::Weights => format!("{plane} (charts)"),
        };
        self.set_flash(note, false, now);
        self.changed(now);
    }

    /// Sets the weights to the selected candidate's gating direction (ArmoRM's coefficients
    /// for this prompt), so the user can start from the model's own view and move off it.
    pub(crate) fn adopt_model_direction(&mut self, now: Instant) {
        let views = self.candidate_views();
        let Some(own) = views
            .get(self.selected)
            .and_then(|c| c.model_direction.clone())
        else {
            let why = if self.info.as_ref().is_some_and(|i| i.gating) {
                "score the selected candidate first: its gating direction comes with its score"
            } else {
                "this model has no direction of its own (only gating models such as ArmoRM do)"
            };
            self.set_flash(why.into(), false, now);
            return;
        };
        let norm = own.iter().map(|w| w * w).sum::<f64>().sqrt();
        if !(norm > 0.0 && norm.is_finite()) {
            self.set_flash("the model's own direction is zero here".into(), true, now);
            return;
        }
        self.dial.mode = DialMode::Weights;
        self.dial.weights = own;
        let name = views[self.selected].name.clone();
        self.set_flash(
            format!(
                "weights: {name}'s gating direction; R here is the gating R / {norm:.3} (its length)"
            ),
            false,
            now,
        );
        self.changed(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_papers_presets_come_with_dpa() {
        let labels: Vec<String> = crate::model::DPA_LABELS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let p = builtin_presets(&labels);
        let degs: Vec<f64> = p
            .iter()
            .map(|p| match p.direction {
                Direction::Angle { degrees, .. } => degrees,
                _ => f64::NAN,
            })
            .collect();
        assert_eq!(degs[0], 0.0);
        assert_eq!(degs[1], -15.0);
        assert!((degs[2] + 36.87).abs() < 0.01);
        assert_eq!(degs[3], 90.0);
        // HelpSteer2's weights resolve on DPA's attributes, with verbosity against.
        let v = p[4].direction.resolve(&labels).unwrap();
        assert!(v[1] > 0.6 && v[4] < 0.0 && v[5..].iter().all(|w| *w == 0.0));
    }
}
