//! The key table, as the help screen and the README list it. Data only: `keys` implements
//! it, `widgets::help` shows it.

/// Every key, as the help screen lists it: (section, [(keys, what they do)]).
pub const HELP: &[(&str, &[(&str, &str)])] = &[
    (
        "Anywhere",
        &[
            ("Ctrl-Q  Ctrl-C", "quit (the session is autosaved)"),
            ("F1  Alt-H", "this help"),
            ("Tab  Shift-Tab", "focus: prompt → response → dial"),
            ("Esc", "leave the editor (focus the dial)"),
            ("F2  Alt-S", "bars: 0–100 ↔ HelpSteer 0–4 scale"),
            ("F3  Alt-V", "view: ranking/scatter/sweep/trajectory"),
            ("F4  Alt-M", "dial: angle θ ↔ free weight vector"),
            ("F5  Alt-R", "rescore; retry failures or a failed load"),
            ("F6  Alt-P", "presets (the model's and your own)"),
            ("Ctrl-N  F7", "new candidate response"),
            ("F8  Alt-D", "delete the candidate (asks first)"),
            ("Alt-U", "undo the last deletion"),
            ("Alt-N", "new session (asks first if unsaved)"),
            ("Alt-↑ Alt-↓", "previous / next candidate"),
            ("Alt-1 … Alt-9", "select candidate 1 … 9"),
            ("Ctrl-S", "save the session (JSON)"),
            ("Ctrl-O", "open a session (asks first if unsaved)"),
            ("Ctrl-E", "export scores (.jsonl or .csv)"),
            ("Alt-E", "export the trajectory shown (.csv)"),
        ],
    ),
    (
        "In an editor",
        &[
            ("any character", "is text, including q and ?"),
            ("arrows Home End", "move; with Shift: select"),
            ("Ctrl-← Ctrl-→", "move by word"),
            ("PgUp PgDn", "scroll"),
            ("Ctrl-Z  Ctrl-Y", "undo / redo"),
            ("Ctrl-A", "select all (in path boxes too)"),
            (
                "Ctrl-X  Alt-C  Ctrl-V",
                "cut / copy / paste (editor clipboard)",
            ),
            ("terminal paste", "inserts the pasted text"),
            ("Ctrl-K  Ctrl-W", "delete to line end / word back"),
        ],
    ),
    (
        "On the dial (angle mode)",
        &[
            ("← →", "turn θ by 5°"),
            ("Shift-← Shift-→", "turn θ by 1°"),
            ("0", "θ = 0° (along the x axis)"),
            ("x  y", "next attribute on the x / y axis"),
            ("X  Y", "previous attribute on the x / y axis"),
            ("g", "weights: the model's own (ArmoRM)"),
            ("↑ ↓  [ ]", "previous / next candidate"),
            ("1 … 9", "select candidate"),
            ("Enter  e", "edit the selected response"),
            ("p", "presets"),
            ("m", "switch to the weight vector"),
            ("h  v  r", "scale / view / rescore"),
            ("n  d  u", "new / delete / undo delete candidate"),
            ("?", "help (q does not quit here: Ctrl-Q does)"),
        ],
    ),
    (
        "On the dial (weights mode)",
        &[
            ("↑ ↓", "choose an attribute"),
            ("← →", "weight −/+ 0.1"),
            ("Shift-← Shift-→", "weight −/+ 0.01"),
            ("x  y", "put this attribute on the x / y axis"),
            ("0", "back to the x axis alone"),
            ("m", "back to the angle"),
        ],
    ),
    (
        "Presets",
        &[
            ("↑ ↓  Enter", "choose / apply"),
            ("s", "save the current direction under a name"),
            ("d  Delete", "delete one of your presets"),
            ("Esc", "close"),
        ],
    ),
    (
        "Mouse",
        &[
            ("click", "focus an editor, place the cursor"),
            ("drag on the dial", "point θ there"),
            ("click tab / rank row", "select that candidate or view"),
            ("wheel", "scroll · turn the dial · step candidates"),
        ],
    ),
];
