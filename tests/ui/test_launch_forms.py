"""The launch forms' scale-out fields: devices, machines and machine 0's address, and the effective batch
size, shown under them and kept up to date as the batch size, accumulation, devices or machines change."""

import gradio as gr
import pytest

from pretrain_studio.studio import Studio
from pretrain_studio.ui.finetune_tab import build_finetune_tab
from pretrain_studio.ui.pretrain_tab import build_pretrain_tab, effective_batch_text


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    studio = Studio(tmp_path_factory.mktemp("forms") / "workspace", start_worker=False)
    yield studio
    studio.close()


def effective_batch_handler(demo: gr.Blocks, component):
    """The function that redraws the effective batch when `component` changes, and its output Markdown."""
    fn = next(f for f in demo.fns.values() if (component._id, "change") in f.targets
              and any(isinstance(o, gr.Markdown) for o in f.outputs))
    return fn.fn, [c.label for c in fn.inputs]


@pytest.mark.parametrize("build, expected_inputs", [
    (build_pretrain_tab, ["Batch size", "Gradient accumulation", "Devices (processes)", "Machines"]),
    (build_finetune_tab, ["Batch size", "Devices (processes)", "Machines"]),
])
def test_the_effective_batch_follows_the_form(studio, build, expected_inputs):
    with gr.Blocks() as demo:
        tab = build(studio)
    inputs = tab.inputs
    assert {"devices", "nodes", "rdzv_endpoint"} <= set(inputs)
    assert "node_rank" not in inputs  # the app is always machine 0
    shown = [b for b in demo.blocks.values() if isinstance(b, gr.Markdown) and "Effective batch" in str(b.value)]
    assert len(shown) == 1 and "**16**" in shown[0].value
    update, labels = effective_batch_handler(demo, inputs["devices"])
    assert labels == expected_inputs
    values = {"Batch size": 8, "Gradient accumulation": 4, "Devices (processes)": 2, "Machines": 3}
    text = update(*[values[label] for label in labels])
    expected = 8 * 2 * 3 * (4 if "Gradient accumulation" in labels else 1)
    assert f"Effective batch: **{expected}** per optimizer step" in text and "(2 x 3 machines)" in text


def test_effective_batch_text():
    assert effective_batch_text(16, 1, 1, 1) == "Effective batch: **16** per optimizer step = 16 per device x 1 process"
    assert effective_batch_text(16, 2, 2, 1) == ("Effective batch: **64** per optimizer step = 16 per device x "
                                                  "2 processes x 2 accumulation steps")
    assert effective_batch_text("a lot", 1, 1, 1) == "Effective batch: (enter whole numbers)"
