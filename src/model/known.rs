//! Reward models this tool knows by name: their documented output order, the scale their
//! HelpSteer attributes are on, and the directions their authors publish. A model is known by
//! its attribute list, so a local copy or a fine-tune that keeps the head is known too.

use super::config::{ARMO_LABELS, DPA_LABELS};

/// A model the tool knows.
#[derive(Debug)]
pub struct KnownModel {
    /// The hub id its authors publish it under.
    pub name: &'static str,
    /// Its outputs, in order.
    pub labels: &'static [&'static str],
    /// HelpSteer attributes are the 0–4 rating as 20·s + 10 (DPA's card), so a 0–4 view of
    /// them exists; other models' scores are shown as they come.
    pub helpsteer_0_100: bool,
    /// Scored through its model card's template (DPA's `[INST] … [/INST]` rating prompt)
    /// rather than a chat template the tokenizer files may carry.
    pub card_template: bool,
    /// The directions the model's authors give, first in the presets list.
    pub presets: &'static [KnownPreset],
}

/// A published direction, by attribute name.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KnownPreset {
    pub name: &'static str,
    pub spec: PresetSpec,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PresetSpec {
    /// θ in degrees in the model's default plane (helpfulness × verbosity).
    Angle(f64),
    /// The direction of the vector (x, y) in that plane, as the paper writes it.
    PlaneVector(f64, f64),
    /// Weights by attribute name (normalised when used).
    Weights(&'static [(&'static str, f64)]),
}

/// The DPA reward model (arXiv 2402.18571) and its paper's example directions.
pub const DPA: KnownModel = KnownModel {
    name: "RLHFlow/RewardModel-Mistral-7B-for-DPA-v1",
    labels: &DPA_LABELS,
    helpsteer_0_100: true,
    card_template: true,
    presets: &[
        KnownPreset {
            name: "helpful (θ = 0°)",
            spec: PresetSpec::Angle(0.0),
        },
        KnownPreset {
            name: "paper default (θ = −15°)",
            spec: PresetSpec::Angle(-15.0),
        },
        KnownPreset {
            name: "concise (0.8, −0.6)",
            spec: PresetSpec::PlaneVector(0.8, -0.6),
        },
        KnownPreset {
            name: "verbose (θ = 90°)",
            spec: PresetSpec::Angle(90.0),
        },
    ],
};

/// ArmoRM: its own direction is prompt-dependent (its gating), so it publishes no fixed one.
pub const ARMO_RM: KnownModel = KnownModel {
    name: "RLHFlow/ArmoRM-Llama3-8B-v0.1",
    labels: &ARMO_LABELS,
    helpsteer_0_100: false,
    card_template: false,
    presets: &[],
};

pub const KNOWN_MODELS: &[KnownModel] = &[DPA, ARMO_RM];

/// Directions published for an attribute set rather than one model: offered to every model
/// that has all the attributes they weigh.
pub const SHARED_PRESETS: &[KnownPreset] = &[KnownPreset {
    // The weights the Nemotron-4-340B-Reward card recommends for one scalar reward over the
    // five HelpSteer2 attributes.
    name: "HelpSteer2 weights (Nemotron-4-340B-Reward card)",
    spec: PresetSpec::Weights(&[
        ("helpsteer-helpfulness", 0.3),
        ("helpsteer-correctness", 0.74),
        ("helpsteer-coherence", 0.46),
        ("helpsteer-complexity", 0.47),
        ("helpsteer-verbosity", -0.33),
    ]),
}];

/// The known model with exactly these outputs.
pub fn lookup(labels: &[String]) -> Option<&'static KnownModel> {
    KNOWN_MODELS.iter().find(|k| {
        k.labels
            .iter()
            .copied()
            .eq(labels.iter().map(String::as_str))
    })
}

/// The presets for a model with `labels`: its authors' own, then the shared ones whose
/// attributes it has.
pub fn presets_for(labels: &[String]) -> Vec<KnownPreset> {
    let own = lookup(labels).map_or(&[][..], |k| k.presets);
    let has = |name: &str| labels.iter().any(|l| l == name);
    own.iter()
        .copied()
        .chain(SHARED_PRESETS.iter().copied().filter(|p| match p.spec {
            PresetSpec::Weights(w) => w.iter().all(|(n, _)| has(n)),
            PresetSpec::Angle(_) | PresetSpec::PlaneVector(..) => true,
        }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(l: &[&str]) -> Vec<String> {
        l.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn models_are_known_by_their_outputs() {
        assert_eq!(lookup(&owned(&DPA_LABELS)).unwrap().name, DPA.name);
        assert_eq!(lookup(&owned(&ARMO_LABELS)).unwrap().name, ARMO_RM.name);
        assert!(lookup(&owned(&DPA_LABELS[..9])).is_none());
        assert!(lookup(&owned(&["LABEL_0"])).is_none());
    }

    #[test]
    fn shared_presets_go_where_their_attributes_are() {
        let dpa = presets_for(&owned(&DPA_LABELS));
        assert_eq!(dpa.len(), 5);
        assert_eq!(dpa[1].spec, PresetSpec::Angle(-15.0));
        assert!(dpa[4].name.starts_with("HelpSteer2"));
        let armo = presets_for(&owned(&ARMO_LABELS));
        assert_eq!(armo.len(), 1);
        assert!(presets_for(&owned(&["safety", "helpfulness"])).is_empty());
    }
}
