//! Preferences as directions in reward space (arXiv 2402.18571): attributes, unit weight
//! vectors, the weighted reward R = v · r, presets, rankings under a direction and the angles at
//! which rankings flip, and the HelpSteer scale. Pure functions only.

use serde::{Deserialize, Serialize};

/// The attribute the dial's x axis weighs by default.
pub const HELPFULNESS: &str = "helpsteer-helpfulness";
/// The attribute the dial's y axis weighs by default.
pub const VERBOSITY: &str = "helpsteer-verbosity";

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PreferenceError {
    #[error("unknown attribute {name:?}; attributes are: {}", known.join(", "))]
    UnknownAttribute { name: String, known: Vec<String> },
    #[error("attribute {name:?} is ambiguous: it could be {}", candidates.join(" or "))]
    Ambiguous {
        name: String,
        candidates: Vec<String>,
    },
    #[error("bad weight {0:?}: expected name=number")]
    BadWeight(String),
    #[error("the weights are all zero: a direction needs at least one non-zero weight")]
    Zero,
    #[error("a weight or angle must be a finite number")]
    NotFinite,
}

/// A user's preference, before it is resolved against a model's attributes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// v = (cos θ, sin θ) over (helpfulness, verbosity), θ in degrees.
    Angle { degrees: f64 },
    /// Any weights by attribute name; normalised to unit length when resolved.
    Weights { weights: Vec<(String, f64)> },
}

impl Default for Direction {
    fn default() -> Self {
        Direction::Angle { degrees: 0.0 }
    }
}

impl Direction {
    /// The unit weight vector over `labels` (one weight per model output).
    pub fn resolve(&self, labels: &[String]) -> Result<Vec<f64>, PreferenceError> {
        match self {
            Direction::Angle { degrees } => {
                if !degrees.is_finite() {
                    return Err(PreferenceError::NotFinite);
                }
                let (x, y) = plane(labels)?;
                Ok(angle_weights(labels.len(), x, y, *degrees))
            }
            Direction::Weights { .. } => normalise(&raw_weights(self, labels)?),
        }
    }

    /// A short human description: `θ = -15°` or `correctness=0.71, verbosity=-0.71`.
    pub fn describe(&self) -> String {
        match self {
            Direction::Angle { degrees } => format!("θ = {}°", fmt_angle(*degrees)),
            Direction::Weights { weights } => weights
                .iter()
                .map(|(n, w)| format!("{}={w:.2}", short_name(n)))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// An angle in degrees without a trailing `.0` when it is whole.
pub fn fmt_angle(deg: f64) -> String {
    if (deg - deg.round()).abs() < 1e-9 {
        format!("{}", deg.round() as i64)
    } else {
        format!("{deg:.1}")
    }
}

/// The attribute name without its dataset prefix (`helpsteer-`, `ultrafeedback-`).
pub fn short_name(name: &str) -> &str {
    name.split_once('-').map_or(name, |(_, rest)| rest)
}

/// The attribute name with its dataset abbreviated (`hs helpfulness`, `uf helpfulness`), for
/// places that show names without the dataset headings.
pub fn qualified_name(name: &str) -> String {
    match name.split_once('-') {
        Some(("helpsteer", rest)) => format!("hs {rest}"),
        Some(("ultrafeedback", rest)) => format!("uf {rest}"),
        Some(("beavertails", rest)) => format!("bt {rest}"),
        Some(("prometheus", rest)) => format!("pm {rest}"),
        Some(("argilla", rest)) => format!("ar {rest}"),
        Some(("code", rest)) => format!("code {rest}"),
        _ => name.to_string(),
    }
}

/// A dataset's name as the bars head its group (`helpsteer` → `HelpSteer`).
pub fn dataset_name(prefix: &str) -> String {
    match prefix {
        "helpsteer" => "HelpSteer".into(),
        "ultrafeedback" => "UltraFeedback".into(),
        "beavertails" => "BeaverTails".into(),
        "prometheus" => "Prometheus".into(),
        "argilla" => "Argilla".into(),
        "code" => "Code".into(),
        other => other.to_string(),
    }
}

/// Whether an attribute is on the HelpSteer 0–4 scale when converted.
pub fn is_helpsteer(name: &str) -> bool {
    name.starts_with("helpsteer-")
}

/// The model's 0–100 score on the HelpSteer 0–4 scale: (score − 10) / 20.
pub fn helpsteer_scale(score: f64) -> f64 {
    (score - 10.0) / 20.0
}

/// The unit vector (cos θ, sin θ) placed on attributes `x` and `y` of an `n`-vector.
pub fn angle_weights(n: usize, x: usize, y: usize, degrees: f64) -> Vec<f64> {
    let (s, c) = degrees.to_radians().sin_cos();
    let mut v = vec![0.0; n];
    v[x] += c;
    v[y] += s;
    v
}

/// The angle (degrees, in (−180, 180]) of the direction (wx, wy) in the dial's plane.
pub fn angle_of(wx: f64, wy: f64) -> f64 {
    wy.atan2(wx).to_degrees()
}

/// Scales a vector to unit length. The vector is first divided by its largest |w|, so that
/// squares of huge weights (1e308) do not overflow and those of tiny ones (1e-200) do not
/// vanish.
pub fn normalise(v: &[f64]) -> Result<Vec<f64>, PreferenceError> {
    if v.iter().any(|x| !x.is_finite()) {
        return Err(PreferenceError::NotFinite);
    }
    let largest = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if largest == 0.0 {
        return Err(PreferenceError::Zero);
    }
    let scaled: Vec<f64> = v.iter().map(|x| x / largest).collect();
    let norm = scaled.iter().map(|x| x * x).sum::<f64>().sqrt();
    Ok(scaled.iter().map(|x| x / norm).collect())
}

/// R = v · r.
pub fn weighted(weights: &[f64], scores: &[f32]) -> f64 {
    weights.iter().zip(scores).map(|(w, s)| w * *s as f64).sum()
}

/// An f32 as the f64 with the same shortest decimal form, so JSON shows `68.99269`, not
/// `68.99269104003906`; every score written to a file goes through it.
pub fn shortest(v: f32) -> f64 {
    format!("{v}").parse().unwrap_or(v as f64)
}

/// A candidate's R = v · r under the unit direction `unit`: the one function every R shown
/// or written comes from. `None` when the direction and the scores differ in length (a
/// direction for another model) or the result is not a finite number.
pub fn reward(unit: &[f64], scores: &[f32]) -> Option<f64> {
    if unit.len() != scores.len() {
        return None;
    }
    Some(weighted(unit, scores)).filter(|r| r.is_finite())
}

/// How a unit direction lies in the plane of two attributes (the dial's plane).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PlaneFit {
    /// All of the direction is in the plane, at this angle: R is the projection onto it.
    Inside { degrees: f64 },
    /// Part of the direction (of this length, < 1) is in the plane; R also weighs other
    /// attributes, so no projection in the plane is R.
    Partly { degrees: f64, share: f64 },
    /// None of the direction is in the plane.
    Outside,
}

impl PlaneFit {
    /// The angle at which R equals the projection, when there is one.
    pub fn exact_degrees(self) -> Option<f64> {
        match self {
            PlaneFit::Inside { degrees } => Some(degrees),
            _ => None,
        }
    }
}

/// How the unit direction `unit` lies in the plane of attributes `x` and `y`.
pub fn plane_fit(unit: &[f64], x: usize, y: usize) -> PlaneFit {
    let (wx, wy) = (
        unit.get(x).copied().unwrap_or(0.0),
        unit.get(y).copied().unwrap_or(0.0),
    );
    let share = wx.hypot(wy);
    let rest: f64 = unit
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != x && *i != y)
        .map(|(_, w)| w * w)
        .sum();
    if share == 0.0 || !share.is_finite() {
        PlaneFit::Outside
    } else if rest <= 1e-12 {
        PlaneFit::Inside {
            degrees: angle_of(wx, wy),
        }
    } else {
        PlaneFit::Partly {
            degrees: angle_of(wx, wy),
            share,
        }
    }
}

/// Finds an attribute by its full name, or by a suffix that names exactly one attribute
/// (`correctness`, `verbosity`, `overall_score`).
/// The dial's plane (x, y): helpfulness × verbosity where the model has them (DPA, ArmoRM),
/// else its first two attributes; a one-output model has none.
pub fn plane(labels: &[String]) -> Result<(usize, usize), PreferenceError> {
    match (
        find_attribute(labels, HELPFULNESS),
        find_attribute(labels, VERBOSITY),
    ) {
        (Ok(x), Ok(y)) => Ok((x, y)),
        _ if labels.len() >= 2 => Ok((0, 1)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// The names of the plane's axes as the charts show them (`helpfulness`, `verbosity`).
pub fn plane_names(labels: &[String]) -> Option<(String, String)> {
    let (x, y) = plane(labels).ok()?;
    Some((
        short_name(&labels[x]).to_string(),
        short_name(&labels[y]).to_string(),
    ))
}

pub fn find_attribute(labels: &[String], name: &str) -> Result<usize, PreferenceError> {
    let name = name.trim();
    if let Some(i) = labels.iter().position(|l| l == name) {
        return Ok(i);
    }
    let matches: Vec<usize> = labels
        .iter()
        .enumerate()
        .filter(|(_, l)| short_name(l) == name)
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [i] => Ok(*i),
        [] => Err(PreferenceError::UnknownAttribute {
            name: name.to_string(),
            known: labels.to_vec(),
        }),
        many => Err(PreferenceError::Ambiguous {
            name: name.to_string(),
            candidates: many.iter().map(|&i| labels[i].clone()).collect(),
        }),
    }
}

/// Parses `name=w,name=w` into weights (names resolved later, against the model's labels).
pub fn parse_weights(spec: &str) -> Result<Vec<(String, f64)>, PreferenceError> {
    let mut out = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, w) = part
            .split_once('=')
            .ok_or_else(|| PreferenceError::BadWeight(part.to_string()))?;
        let w: f64 = w
            .trim()
            .parse()
            .map_err(|_| PreferenceError::BadWeight(part.to_string()))?;
        if !w.is_finite() {
            return Err(PreferenceError::NotFinite);
        }
        out.push((name.trim().to_string(), w));
    }
    if out.is_empty() {
        return Err(PreferenceError::BadWeight(spec.to_string()));
    }
    Ok(out)
}

/// A named direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    pub name: String,
    pub direction: Direction,
}

/// The paper's example directions: pure helpfulness, its θ = −15° default, v = (0.8, −0.6)
/// (θ ≈ −37°), and pure verbosity.
pub fn paper_presets() -> Vec<Preset> {
    let angle = |name: &str, degrees: f64| Preset {
        name: name.to_string(),
        direction: Direction::Angle { degrees },
    };
    vec![
        angle("helpful (θ = 0°)", 0.0),
        angle("paper default (θ = −15°)", -15.0),
        angle("concise (0.8, −0.6)", angle_of(0.8, -0.6)),
        angle("verbose (θ = 90°)", 90.0),
    ]
}

/// Indices of `rewards` from best to worst; `None` (not yet scored) last; ties keep order.
pub fn ranking(rewards: &[Option<f64>]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..rewards.len()).collect();
    idx.sort_by(|&a, &b| match (rewards[a], rewards[b]) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
    idx
}

/// Where two candidates swap places as θ turns: R_i(θ) = R_j(θ).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Crossing {
    pub degrees: f64,
    pub a: usize,
    pub b: usize,
}

/// Every θ in (−90°, 90°) at which two candidates, given as (x, y) scores in the dial's plane,
/// swap rank, sorted by θ. With R = cos θ·x + sin θ·y, candidates i and j tie where
/// tan θ = −Δx/Δy: once in that open interval when Δy ≠ 0, never when Δy = 0.
pub fn crossings(points: &[(f64, f64)]) -> Vec<Crossing> {
    let mut out = Vec::new();
    for a in 0..points.len() {
        for b in a + 1..points.len() {
            let dx = points[a].0 - points[b].0;
            let dy = points[a].1 - points[b].1;
            if dy == 0.0 {
                continue;
            }
            let degrees = (-dx / dy).atan().to_degrees();
            if degrees > -90.0 && degrees < 90.0 {
                out.push(Crossing { degrees, a, b });
            }
        }
    }
    out.sort_by(|x, y| x.degrees.total_cmp(&y.degrees));
    out
}

/// R(θ) for a point in the dial's plane: the same number as [`reward`] of the scores under
/// the angle direction θ, without building the ten-vector.
pub fn reward_at(point: (f64, f64), degrees: f64) -> f64 {
    let (s, c) = degrees.to_radians().sin_cos();
    c * point.0 + s * point.1
}

/// An angle in degrees folded into (−180°, 180°].
pub fn wrap_degrees(deg: f64) -> f64 {
    let d = deg.rem_euclid(360.0);
    if d > 180.0 {
        d - 360.0
    } else {
        d
    }
}

/// The foot of the perpendicular from `point` onto the line through the origin at `degrees`:
/// (R · cos θ, R · sin θ), where R is the point's reward under that direction.
pub fn projection(point: (f64, f64), degrees: f64) -> (f64, f64) {
    let r = reward_at(point, degrees);
    let (s, c) = degrees.to_radians().sin_cos();
    (r * c, r * s)
}

/// R(θ) sampled every `step` degrees over [from, to], both ends included.
pub fn sweep(point: (f64, f64), from: f64, to: f64, step: f64) -> Vec<(f64, f64)> {
    if step.is_nan() || step <= 0.0 || from > to {
        return Vec::new();
    }
    let n = ((to - from) / step).floor() as usize;
    let mut out: Vec<(f64, f64)> = (0..=n)
        .map(|i| {
            let d = from + i as f64 * step;
            (d, reward_at(point, d))
        })
        .collect();
    if out.last().is_some_and(|(d, _)| (to - d).abs() > 1e-9) {
        out.push((to, reward_at(point, to)));
    }
    out
}

/// The weights of `direction` as a raw vector over `labels` (not normalised), for editing.
pub fn raw_weights(direction: &Direction, labels: &[String]) -> Result<Vec<f64>, PreferenceError> {
    match direction {
        Direction::Angle { .. } => direction.resolve(labels),
        Direction::Weights { weights } => {
            let mut v = vec![0.0; labels.len()];
            for (name, w) in weights {
                if !w.is_finite() {
                    return Err(PreferenceError::NotFinite);
                }
                v[find_attribute(labels, name)?] += w;
            }
            Ok(v)
        }
    }
}

/// A weight vector over `labels` as a [`Direction`], leaving out zero weights.
pub fn weights_direction(labels: &[String], weights: &[f64]) -> Direction {
    Direction::Weights {
        weights: labels
            .iter()
            .zip(weights)
            .filter(|(_, w)| **w != 0.0)
            .map(|(l, w)| (l.clone(), *w))
            .collect(),
    }
}

/// The best candidate on each stretch of θ over [from, to]: (start, end, index) runs, which
/// is where best-of-n picks a different response.
pub fn leaders(points: &[(f64, f64)], from: f64, to: f64) -> Vec<(f64, f64, usize)> {
    if points.is_empty() || from >= to {
        return Vec::new();
    }
    let mut cuts: Vec<f64> = crossings(points)
        .into_iter()
        .map(|c| c.degrees)
        .filter(|d| *d > from && *d < to)
        .collect();
    cuts.insert(0, from);
    cuts.push(to);
    let mut runs: Vec<(f64, f64, usize)> = Vec::new();
    for w in cuts.windows(2) {
        let mid = (w[0] + w[1]) / 2.0;
        let best = (0..points.len())
            .max_by(|&i, &j| {
                reward_at(points[i], mid)
                    .total_cmp(&reward_at(points[j], mid))
                    .then(j.cmp(&i))
            })
            .unwrap_or(0);
        match runs.last_mut() {
            Some(last) if last.2 == best => last.1 = w[1],
            _ => runs.push((w[0], w[1], best)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        crate::model::DPA_LABELS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn angle_direction_is_cos_sin_over_helpfulness_and_verbosity() {
        let v = Direction::Angle { degrees: 15.0 }
            .resolve(&labels())
            .unwrap();
        assert!((v[0] - 15f64.to_radians().cos()).abs() < 1e-12);
        assert!((v[4] - 15f64.to_radians().sin()).abs() < 1e-12);
        assert_eq!(v.iter().filter(|x| **x != 0.0).count(), 2);
        let norm: f64 = v.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-12);
    }

    #[test]
    fn weights_are_normalised_and_found_by_short_name() {
        let w = parse_weights("correctness=3, helpsteer-verbosity=-4").unwrap();
        let v = Direction::Weights { weights: w }
            .resolve(&labels())
            .unwrap();
        assert!((v[1] - 0.6).abs() < 1e-12);
        assert!((v[4] + 0.8).abs() < 1e-12);
    }

    #[test]
    fn weights_refuse_zero_unknown_and_ambiguous() {
        let zero = Direction::Weights {
            weights: vec![("correctness".into(), 0.0)],
        };
        assert_eq!(zero.resolve(&labels()), Err(PreferenceError::Zero));
        let e = find_attribute(&labels(), "kindness").unwrap_err();
        assert!(e.to_string().contains("kindness"));
        let e = find_attribute(&labels(), "helpfulness").unwrap_err();
        assert!(matches!(e, PreferenceError::Ambiguous { .. }), "{e}");
        assert!(parse_weights("correctness").is_err());
        assert!(parse_weights("correctness=abc").is_err());
        assert!(parse_weights("").is_err());
    }

    #[test]
    fn huge_and_tiny_weights_normalise_to_the_same_direction() {
        let l = labels();
        let half = std::f64::consts::FRAC_1_SQRT_2;
        for w in ["1e308", "1e-200", "5e-324", "1.7976931348623157e308"] {
            let spec = format!("correctness={w},coherence={w}");
            let v = Direction::Weights {
                weights: parse_weights(&spec).unwrap(),
            }
            .resolve(&l)
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert!((v[1] - half).abs() < 1e-12, "{spec}: {v:?}");
            assert!((v[2] - half).abs() < 1e-12, "{spec}: {v:?}");
        }
        let v = normalise(&[1e308, -1e-300, 0.0]).unwrap();
        assert_eq!(v[0], 1.0);
        assert!(v[1] <= 0.0 && v[1] > -1e-300, "{v:?}");
        assert_eq!(normalise(&[0.0, -0.0]), Err(PreferenceError::Zero));
        assert_eq!(parse_weights("a=1e309"), Err(PreferenceError::NotFinite));
    }

    #[test]
    fn weighted_reward_is_the_dot_product() {
        let scores = [
            68.99f32, 69.63, 76.23, 33.49, 35.85, 63.83, 55.59, 68.72, 59.55, 46.47,
        ];
        let v = Direction::Angle { degrees: 15.0 }
            .resolve(&labels())
            .unwrap();
        let r = weighted(&v, &scores);
        let expect =
            15f64.to_radians().cos() * 68.99f32 as f64 + 15f64.to_radians().sin() * 35.85f32 as f64;
        assert!((r - expect).abs() < 1e-9);
    }

    #[test]
    fn reward_is_v_dot_r_and_refuses_mismatches() {
        let scores = [
            -18.4f32, 69.63, 76.23, 33.49, 135.85, 63.83, 55.59, 68.72, 59.55, 46.47,
        ];
        let v = Direction::Weights {
            weights: vec![("correctness".into(), 1.0), ("honesty".into(), 1.0)],
        }
        .resolve(&labels())
        .unwrap();
        let want = (69.63f32 as f64 + 59.55f32 as f64) / 2f64.sqrt();
        assert!((reward(&v, &scores).unwrap() - want).abs() < 1e-9);
        assert_eq!(reward(&v[..9], &scores), None);
        let mut bad = scores;
        bad[1] = f32::NAN;
        assert_eq!(reward(&v, &bad), None);
        // The dial's plane shortcut gives the same R as the full dot product.
        for deg in [-90.0, -37.0, 0.0, 15.0, 90.0, 180.0] {
            let u = Direction::Angle { degrees: deg }
                .resolve(&labels())
                .unwrap();
            let at = reward_at((scores[0] as f64, scores[4] as f64), deg);
            assert!((reward(&u, &scores).unwrap() - at).abs() < 1e-9, "{deg}");
        }
    }

    #[test]
    fn the_plane_is_helpfulness_by_verbosity_where_a_model_has_them_else_its_first_two() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let dpa = names(&crate::model::DPA_LABELS);
        assert_eq!(plane(&dpa).unwrap(), (0, 4));
        let cls = names(&["safety", "helpfulness", "style"]);
        assert_eq!(plane(&cls).unwrap(), (0, 1));
        assert_eq!(
            plane_names(&cls),
            Some(("safety".to_string(), "helpfulness".to_string()))
        );
        assert!(plane(&names(&["LABEL_0"])).is_err());
        // The angle's direction lies in that plane.
        let v = Direction::Angle { degrees: 90.0 }.resolve(&cls).unwrap();
        assert!(v[0].abs() < 1e-12 && (v[1] - 1.0).abs() < 1e-12 && v[2] == 0.0);
    }

    #[test]
    fn plane_fit_tells_whether_r_is_a_projection() {
        let l = labels();
        let inside = Direction::Angle { degrees: -15.0 }.resolve(&l).unwrap();
        match plane_fit(&inside, 0, 4) {
            PlaneFit::Inside { degrees } => assert!((degrees + 15.0).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
        let correctness = Direction::Weights {
            weights: vec![("correctness".into(), 1.0)],
        }
        .resolve(&l)
        .unwrap();
        assert_eq!(plane_fit(&correctness, 0, 4), PlaneFit::Outside);
        let mixed = Direction::Weights {
            weights: vec![
                ("correctness".into(), 1.0),
                ("helpsteer-helpfulness".into(), 1.0),
            ],
        }
        .resolve(&l)
        .unwrap();
        match plane_fit(&mixed, 0, 4) {
            PlaneFit::Partly { degrees, share } => {
                assert!(degrees.abs() < 1e-9);
                assert!((share - 0.5f64.sqrt()).abs() < 1e-9);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(plane_fit(&mixed, 0, 4).exact_degrees(), None);
    }

    #[test]
    fn helpsteer_scale_matches_the_model_card() {
        assert!((helpsteer_scale(68.99269) - 2.9496345).abs() < 1e-6);
        assert!((helpsteer_scale(35.853596) - 1.2926798).abs() < 1e-6);
    }

    #[test]
    fn paper_presets_include_the_four_examples() {
        let p = paper_presets();
        let degs: Vec<f64> = p
            .iter()
            .map(|p| match p.direction {
                Direction::Angle { degrees } => degrees,
                _ => f64::NAN,
            })
            .collect();
        assert_eq!(degs[0], 0.0);
        assert_eq!(degs[1], -15.0);
        assert!((degs[2] + 36.87).abs() < 0.01);
        assert_eq!(degs[3], 90.0);
    }

    #[test]
    fn ranking_orders_by_reward_with_unscored_last() {
        assert_eq!(
            ranking(&[Some(1.0), None, Some(3.0), Some(2.0)]),
            vec![2, 3, 0, 1]
        );
    }

    #[test]
    fn crossings_are_where_rewards_tie() {
        // A is more helpful, B more verbose: B overtakes A as θ grows.
        let pts = [(80.0, 20.0), (60.0, 60.0)];
        let c = crossings(&pts);
        assert_eq!(c.len(), 1);
        let d = c[0].degrees;
        assert!((reward_at(pts[0], d) - reward_at(pts[1], d)).abs() < 1e-9);
        assert!((d - 26.565).abs() < 1e-3);
        let runs = leaders(&pts, -90.0, 90.0);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].2, 0);
        assert_eq!(runs[1].2, 1);
        assert!((runs[0].1 - d).abs() < 1e-9);
    }

    #[test]
    fn equal_verbosity_never_crosses() {
        assert!(crossings(&[(10.0, 5.0), (20.0, 5.0)]).is_empty());
    }

    #[test]
    fn wrap_degrees_folds_into_a_half_open_turn() {
        assert_eq!(wrap_degrees(0.0), 0.0);
        assert_eq!(wrap_degrees(180.0), 180.0);
        assert_eq!(wrap_degrees(-180.0), 180.0);
        assert_eq!(wrap_degrees(185.0), -175.0);
        assert_eq!(wrap_degrees(-185.0), 175.0);
        assert_eq!(wrap_degrees(725.0), 5.0);
    }

    #[test]
    fn projection_lies_on_the_direction_at_distance_r() {
        let p = (70.0, 35.0);
        for deg in [-37.0, 0.0, 15.0, 90.0] {
            let (fx, fy) = projection(p, deg);
            let r = reward_at(p, deg);
            assert!(((fx * fx + fy * fy).sqrt() - r.abs()).abs() < 1e-9);
            // The residual is perpendicular to the direction.
            let (s, c) = f64::to_radians(deg).sin_cos();
            assert!(((p.0 - fx) * c + (p.1 - fy) * s).abs() < 1e-9);
        }
        assert_eq!(projection(p, 0.0), (70.0, 0.0));
    }

    #[test]
    fn sweep_covers_both_ends() {
        let s = sweep((1.0, 0.0), -90.0, 90.0, 1.0);
        assert_eq!(s.len(), 181);
        assert_eq!(s[0].0, -90.0);
        assert_eq!(s[180].0, 90.0);
        assert!((s[90].1 - 1.0).abs() < 1e-12);
        let odd = sweep((1.0, 0.0), 0.0, 10.0, 4.0);
        assert_eq!(
            odd.iter().map(|p| p.0).collect::<Vec<_>>(),
            vec![0.0, 4.0, 8.0, 10.0]
        );
        assert!(sweep((1.0, 0.0), 0.0, 1.0, 0.0).is_empty());
    }

    #[test]
    fn raw_weights_round_trip_through_a_direction() {
        let l = labels();
        let d = Direction::Weights {
            weights: vec![
                ("correctness".into(), 2.0),
                ("helpsteer-verbosity".into(), -1.0),
            ],
        };
        let raw = raw_weights(&d, &l).unwrap();
        assert_eq!(raw[1], 2.0);
        assert_eq!(raw[4], -1.0);
        let back = weights_direction(&l, &raw);
        assert_eq!(back.resolve(&l).unwrap(), d.resolve(&l).unwrap());
        let a = raw_weights(&Direction::Angle { degrees: 90.0 }, &l).unwrap();
        assert!((a[4] - 1.0).abs() < 1e-12);
    }

    #[test]
    fn describe_reads_naturally() {
        assert_eq!(Direction::Angle { degrees: -15.0 }.describe(), "θ = -15°");
        let d = Direction::Weights {
            weights: vec![("helpsteer-correctness".into(), 0.5)],
        };
        assert_eq!(d.describe(), "correctness=0.50");
    }
}
