//! The composition root of the explorer: turns the command line into the explorer's
//! configuration, its files and its model loader. Only `main` calls it.

use anyhow::Context;

use dpa_explorer::assets::Demo;
use dpa_explorer::cli::{self, Cli};
use dpa_explorer::engine;
use dpa_explorer::hub::HubOptions;
use dpa_explorer::model::DPA_LABELS;
use dpa_explorer::tui::{self, session, AppConfig, Launch, Paths};

/// Everything the explorer needs, checked before the screen is taken over (where a message
/// can still be read).
pub fn explorer(cli: &Cli) -> anyhow::Result<Launch> {
    let direction = cli.direction.direction()?;
    // DPA's attributes are known before it loads: a direction that names others fails at
    // once. Another model's are checked when it is ready.
    let dpa = cli.model.demo == Some(Demo::Dpa)
        || (cli.model.demo.is_none() && cli.model.model == dpa_explorer::hub::DEFAULT_MODEL);
    if dpa {
        let labels: Vec<String> = DPA_LABELS.iter().map(|s| s.to_string()).collect();
        direction
            .resolve(&labels)
            .context("the starting direction (--angle/--weights)")?;
        if let Some((x, y)) = cli.direction.axes()? {
            dpa_explorer::preference::axes_plane(&labels, &x, &y).context("--axes")?;
        }
    }
    let source = cli.model.source()?;
    let demo = cli.model.is_demo();
    let model_name = match cli.model.demo {
        Some(d) => d.title().to_string(),
        None => cli.model.model.clone(),
    };
    if let Some(dir) = cli.ui.session.as_deref().filter(|p| p.is_dir()) {
        anyhow::bail!(
            "--session {} is a directory; name a session file (it is created when missing)",
            dir.display()
        );
    }
    let data = dpa_explorer::assets::data_root();
    let paths = Paths {
        autosave: Some(data.join(session::autosave_name(demo, cli.ui.session.as_deref()))),
        presets: Some(dpa_explorer::assets::config_root().join("presets.json")),
        session: cli.ui.session.clone(),
    };
    let config = AppConfig {
        model_name,
        demo,
        direction,
        axes: cli.direction.axes()?,
        device: match cli.model.servers.as_slice() {
            [] => format!("{:?}", cli.model.device).to_lowercase(),
            servers => format!(
                "remote {}",
                servers
                    .iter()
                    .map(|u| u.as_str().trim_end_matches('/'))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        dtype: if cli.model.servers.is_empty() {
            format!("{:?}", cli.model.dtype).to_lowercase()
        } else {
            "server".into()
        },
        paths,
    };
    let options = cli.model.load_options();
    let remote = cli.model.remote();
    // Hub settings are read again for each load, so F5 after fixing the environment works.
    let loader = Box::new(move || {
        let load = match &remote {
            Some(remote) => engine::remote_loader(
                source.clone(),
                HubOptions::from_env(),
                options.max_tokens,
                remote.clone(),
            ),
            None => engine::model_loader(
                source.clone(),
                HubOptions::from_env(),
                options.clone(),
                Some(dpa_explorer::assets::quant_cache()),
            ),
        };
        // The model layer names a setting; the user knows it by its flag.
        Box::new(move |progress: &dyn Fn(engine::LoadStage)| load(progress).map_err(cli::name_flag))
            as engine::Loader
    });
    Ok(Launch {
        config,
        hint: cli::no_model_hint(&cli.model),
        loader,
    })
}

/// Runs the explorer as the command line asks.
pub fn run_explorer(cli: &Cli) -> anyhow::Result<()> {
    tui::run(explorer(cli)?)
}
