"""Compare A/B: two settings (two models, or two temperatures of one) on the same note and seed,
heard blind.

Each round the two clips are shown as "A" and "B" in a random order; the page names them only
after the vote, which is stored on this machine (:mod:`apps.votes`) and summed up in the model
zoo. Two draws of one setting come from one batch (``model.generate(2, ...)``).
"""

from __future__ import annotations

import secrets
import time

import gradio as gr

from apps import common, votes
from apps.generate_tab import MIN_SECONDS, STEP_SECONDS, figure, number, pitch_report
from workbench.errors import WorkbenchError
from workbench.models.base import note_name

#: The conditioning a comparison shares (the common vocabulary); dense inputs are left to each model.
SHARED = ("pitch", "instrument", "velocity")
VOTES = {"A is better": "A", "B is better": "B", "no preference": "tie"}
PLOT_PX = 300


def shared_specs(models: dict) -> dict:
    """``{name: (kind, default, range or choices)}`` of :data:`SHARED` over every model that takes it:
    the widest range, every choice."""
    out = {}
    for model in models.values():
        for spec in model.conditioning:
            if spec.name not in SHARED or spec.kind == "frames":
                continue
            if spec.name not in out:
                out[spec.name] = (spec.kind, spec.default, spec.range or tuple(spec.choices or ()))
            elif spec.kind == "choice":
                kind, default, choices = out[spec.name]
                out[spec.name] = (kind, default, tuple(dict.fromkeys([*choices, *spec.choices])))
            elif spec.range is not None:
                kind, default, (low, high) = out[spec.name]
                out[spec.name] = (kind, default, (min(low, spec.range[0]), max(high, spec.range[1])))
    return {name: out[name] for name in SHARED if name in out}


def setting(models: dict, label: str, temperature) -> votes.Setting:
    if label not in models:
        raise common.error(f"no model named {label!r}; choose one of {', '.join(models)}")
    model = models[label]
    return votes.Setting(label, number("temperature", temperature) if model.uses_temperature else None)


def cond_for(model, values: dict) -> dict:
    """The shared values this model takes: those it has a control for, and its only value where its
    checkpoint knows just one (:func:`departures` says so after the vote)."""
    specs = {s.name: s for s in model.conditioning}
    cond = {}
    for name, value in values.items():
        spec = specs.get(name)
        if spec is None:
            continue
        single = spec.range is not None and spec.range[0] == spec.range[1]
        cond[name] = spec.range[0] if single else value
    return cond


def departures(label: str, model, values: dict) -> list[str]:
    """What ``model`` did not take from the shared values, in words."""
    cond = cond_for(model, values)
    out = []
    for name, value in values.items():
        if name not in cond:
            out.append(f"{label} has no {name} (it ignored {value})")
        elif cond[name] != value:
            out.append(f"{label} knows only {name} {cond[name]} (it used that, not {value})")
    return out


def sample_pair(models: dict, first: votes.Setting, second: votes.Setting, values: dict, seconds: float,
                seed: int, callback) -> list:
    """``[first clip, second clip]`` (Audio): one batch of two when both settings are the same."""
    def run(s: votes.Setting, n: int):
        model = models[s.label]
        try:
            return model.generate(n, seconds=seconds, cond=cond_for(model, values), temperature=s.temperature,
                                  generator=seed, progress=callback)
        except WorkbenchError as exc:
            raise common.error(f"{s.label}: {exc}") from None

    if first == second:  # two draws of one setting, in one batch
        audio = run(first, 2)
        return [audio[0], audio[1]]
    return [run(first, 1), run(second, 1)]


def build(models: dict, flags: common.CancelFlags, store: votes.VoteStore | None = None) -> None:
    """The compare mode's layout and callbacks, inside an open ``gr.Blocks``."""
    labels = list(models)
    shared = shared_specs(models)
    gr.Markdown("Two settings on the **same note and seed**, played blind as **A** and **B** in a random order. "
                "Vote, then see which was which; votes are kept on this machine and summed up in the Model zoo. "
                "Dense inputs (mel frames, f0 curves) are left to each model, so vocoders render the note.")

    def model_controls(which: str, label: str):
        model = models[label]
        choice = gr.Dropdown(labels, value=label, label=f"{which} setting: model")
        temperature = gr.Slider(0.05, 2.0, value=model.default_temperature, step=0.05,
                                label=f"{which} setting: temperature", visible=model.uses_temperature,
                                info="scales the sampling noise or logits (hidden where the model has none)")
        return choice, temperature

    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            first_model, first_temperature = model_controls("first", labels[0])
            second_model, second_temperature = model_controls("second", labels[min(1, len(labels) - 1)])
            controls = {}
            for name, (kind, default, span) in shared.items():
                if kind == "choice":
                    controls[name] = gr.Dropdown(list(span), value=default, label=name,
                                                 info="a model without this choice refuses it with a message")
                else:
                    step = 1 if kind == "int" else (span[1] - span[0]) / 100
                    controls[name] = gr.Slider(span[0], span[1], value=default, step=step,
                                               label=name, info="both models get this value")
            fixed = [f"{label} {m.max_seconds:g} s" for label, m in models.items() if m.max_seconds is not None]
            seconds = gr.Slider(MIN_SECONDS, 2.0, value=0.5, step=STEP_SECONDS, label="seconds",
                                info="fixed-length models make their own length" + (f" ({', '.join(fixed)})"
                                                                                   if fixed else ""))
            seed = gr.Number(0, precision=0, minimum=0, maximum=2**31 - 1, label="seed")
            with gr.Row():
                button = gr.Button("Generate A and B", variant="primary", scale=2)
                stop = gr.Button("Stop", variant="stop", scale=1)
        with gr.Column(scale=2):
            status = gr.Markdown("Press **Generate A and B**.")
            players, plots, notes = [], [], []
            with gr.Row():
                for side in ("A", "B"):
                    with gr.Column(min_width=280):
                        players.append(gr.Audio(label=side, type="numpy", interactive=False))
                        plots.append(gr.Plot(label=side, format="png", show_label=False))
                        notes.append(gr.Markdown())
            with gr.Row():
                vote_buttons = {vote: gr.Button(text, interactive=False) for text, vote in VOTES.items()}
            reveal = gr.Markdown()
    round_state = gr.State(None)

    def show_temperature(label):
        return gr.update(visible=models[label].uses_temperature, value=models[label].default_temperature)

    first_model.change(show_temperature, first_model, first_temperature, queue=False, api_visibility="private")
    second_model.change(show_temperature, second_model, second_temperature, queue=False, api_visibility="private")

    names = list(controls)

    def compare(first_label, first_temp, second_label, second_temp, *rest, progress, request):
        *values, secs, seed_value = rest
        with common.user_errors():
            first, second = setting(models, first_label, first_temp), setting(models, second_label, second_temp)
            asked = {}
            for name, value in zip(names, values):
                kind = shared[name][0]
                asked[name] = (value if kind == "choice" else
                               number(name, value, (lambda v: int(round(v))) if kind == "int" else float))
            secs, seed_int = number("seconds", secs), number("seed", seed_value, int)
            session = common.session_of(request)
            flags.reset(session)
            callback = common.progress_callback(progress, flags, session, "sampling A and B")
            began = time.perf_counter()
            clips = sample_pair(models, first, second, asked, secs, seed_int, callback)
            took = time.perf_counter() - began
            first_was = "A" if secrets.randbelow(2) == 0 else "B"
            shown = clips if first_was == "A" else clips[::-1]
            target = (float(asked["pitch"]), f"the asked {note_name(asked['pitch'])}") if "pitch" in asked else None
            out_players, out_plots, out_notes = [], [], []
            for side, audio in zip("AB", shown):
                played, levels = common.check_levels(audio)
                out_players.append(common.to_gradio(played))
                out_plots.append(figure(played, side, None, PLOT_PX))
                lines = [f"**{side}**: {audio.seconds:.2f} s", *(f"⚠️ {n}" for n in levels.notes),
                         *pitch_report(audio, target, measure=True)]
                out_notes.append("\n\n".join(lines))
            said = ", ".join(f"{k} {v}" + (f" ({note_name(v)})" if k == "pitch" else "") for k, v in asked.items())
            text = (f"**{said}** · seed {seed_int} · both made in {took:.2f} s. Listen to both, then vote.")
            state = {"first": [first.label, first.temperature], "second": [second.label, second.temperature],
                     "first_was": first_was, "cond": {**asked, "seconds": secs}, "seed": seed_int}
            enable = [gr.update(interactive=True) for _ in vote_buttons]
            return (*out_players, *out_plots, *out_notes, text, "", state, *enable)

    params = ["first_model", "first_temperature", "second_model", "second_temperature", *names, "seconds", "seed"]
    fn = common.with_named_inputs(params, lambda values, progress, request: compare(*values, progress=progress,
                                                                                     request=request))
    inputs = [first_model, first_temperature, second_model, second_temperature, *controls.values(), seconds, seed]
    outputs = [*players, *plots, *notes, status, reveal, round_state, *vote_buttons.values()]
    event = button.click(fn, inputs, outputs, api_name="compare", concurrency_limit=1, concurrency_id="generate")

    def vote_on(vote: str):
        def cast(state):
            if not state:
                raise common.error("nothing to vote on: press Generate A and B first (each pair takes one vote)")
            first, second = votes.Setting(*state["first"]), votes.Setting(*state["second"])
            target = store or votes.VoteStore()
            target.record(first, second, state["first_was"], vote, state["cond"], state["seed"])
            a, b = (first, second) if state["first_was"] == "A" else (second, first)
            verdict = {"A": f"you preferred A ({a})", "B": f"you preferred B ({b})", "tie": "no preference"}[vote]
            shared_values = {k: v for k, v in state["cond"].items() if k in SHARED}
            notes = [d for label in dict.fromkeys([a.label, b.label])
                     for d in departures(label, models[label], shared_values)]
            same = " (two draws of one setting, from one batch)" if a == b else ""
            text = (f"A was **{a}**, B was **{b}**{same}: {verdict}. Vote stored ({target.count()} in "
                    f"`{target.path}`); the Model zoo sums them up."
                    + (f" Note: {'; '.join(notes)}." if notes else ""))
            return (text, None, *[gr.update(interactive=False) for _ in vote_buttons])

        return cast

    for vote, vote_button in vote_buttons.items():
        vote_button.click(vote_on(vote), round_state, [reveal, round_state, *vote_buttons.values()],
                          api_name=common.endpoint("vote", vote), queue=False)

    def stop_compare(request: gr.Request):
        flags.cancel(common.session_of(request))

    stop.click(stop_compare, None, None, cancels=[event], queue=False, api_visibility="private")
