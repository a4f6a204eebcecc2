//! Tests of the direction maths.
use super::*;

fn labels() -> Vec<String> {
    crate::model::DPA_LABELS
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn angle_direction_is_cos_sin_over_helpfulness_and_verbosity() {
    let v = Direction::angle(15.0).resolve(&labels()).unwrap();
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
    let v = Direction::angle(15.0).resolve(&labels()).unwrap();
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
        let u = Direction::angle(deg).resolve(&labels()).unwrap();
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
        plane_names(&cls, (0, 1)),
        Some(("safety".to_string(), "helpfulness".to_string()))
    );
    assert!(plane(&names(&["LABEL_0"])).is_err());
    // The angle's direction lies in that plane.
    let v = Direction::angle(90.0).resolve(&cls).unwrap();
    assert!(v[0].abs() < 1e-12 && (v[1] - 1.0).abs() < 1e-12 && v[2] == 0.0);
}

#[test]
fn plane_fit_tells_whether_r_is_a_projection() {
    let l = labels();
    let inside = Direction::angle(-15.0).resolve(&l).unwrap();
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
    let a = raw_weights(&Direction::angle(90.0), &l).unwrap();
    assert!((a[4] - 1.0).abs() < 1e-12);
}

#[test]
fn describe_reads_naturally() {
    assert_eq!(Direction::angle(-15.0).describe(), "θ = -15°");
    let d = Direction::Weights {
        weights: vec![("helpsteer-correctness".into(), 0.5)],
    };
    assert_eq!(d.describe(), "correctness=0.50");
}

#[test]
fn an_angle_turns_in_the_plane_it_names() {
    let l = labels();
    let d = Direction::Angle {
        degrees: 90.0,
        axes: Some(("correctness".into(), "helpsteer-coherence".into())),
    };
    assert_eq!(d.plane(&l).unwrap(), (1, 2));
    let v = d.resolve(&l).unwrap();
    assert!(v[1].abs() < 1e-12 && (v[2] - 1.0).abs() < 1e-12);
    assert_eq!(v.iter().filter(|x| x.abs() > 1e-12).count(), 1);
    assert_eq!(d.describe(), "θ = 90° over correctness × coherence");
    // Without axes: the default plane, and the description the paper uses.
    assert_eq!(Direction::angle(90.0).plane(&l).unwrap(), (0, 4));
    // Axes that are not the model's, or the same twice, are refused by name.
    let bad = |x: &str, y: &str| {
        Direction::Angle {
            degrees: 0.0,
            axes: Some((x.into(), y.into())),
        }
        .resolve(&l)
        .unwrap_err()
    };
    assert!(matches!(
        bad("safety", "verbosity"),
        PreferenceError::UnknownAttribute { .. }
    ));
    assert!(matches!(
        bad("helpfulness", "verbosity"),
        PreferenceError::Ambiguous { .. }
    ));
    assert_eq!(
        bad("correctness", "helpsteer-correctness"),
        PreferenceError::SameAxes("helpsteer-correctness".into())
    );
}

#[test]
fn axes_parse_as_two_names() {
    assert_eq!(
        parse_axes(" correctness , verbosity ").unwrap(),
        ("correctness".to_string(), "verbosity".to_string())
    );
    for bad in ["", "x", "x,", ",y", "x,y,z"] {
        assert_eq!(parse_axes(bad), Err(PreferenceError::BadAxes(bad.into())));
    }
}

#[test]
fn directions_without_axes_keep_their_old_file_form() {
    let json = serde_json::to_string(&Direction::angle(-15.0)).unwrap();
    assert_eq!(json, r#"{"angle":{"degrees":-15.0}}"#);
    let back: Direction = serde_json::from_str(&json).unwrap();
    assert_eq!(back, Direction::angle(-15.0));
    let with = Direction::Angle {
        degrees: 30.0,
        axes: Some(("a".into(), "b".into())),
    };
    let back: Direction = serde_json::from_str(&serde_json::to_string(&with).unwrap()).unwrap();
    assert_eq!(back, with);
}

#[test]
fn a_one_output_model_has_no_plane() {
    let one = vec!["score".to_string()];
    assert_eq!(plane(&one), Err(PreferenceError::NoPlane));
}
