import json

import numpy as np

import models
from deploy.training.trainer import TrainConfig, sample_batch, train


def test_batches_are_aligned_and_deterministic():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (60, 60, 3)).astype(np.uint8)
    from deploy.data.imresize import bicubic_lr
    pairs = [(hr, bicubic_lr(hr, 3))]
    lr_a, hr_a = sample_batch(pairs, 4, 8, 3, np.random.default_rng([0, 5]))
    lr_b, hr_b = sample_batch(pairs, 4, 8, 3, np.random.default_rng([0, 5]))
    assert lr_a.shape == (4, 8, 8, 3) and hr_a.shape == (4, 24, 24, 3)
    np.testing.assert_array_equal(lr_a, lr_b)
    np.testing.assert_array_equal(hr_a, hr_b)


def test_train_resume_and_export(tmp_path, train_dir):
    run, wdir = tmp_path / "run", tmp_path / "weights"
    base = dict(model="espcn", scale=2, batch=2, patch=16, val_every=2, run_dir=str(run),
                train_dir=str(train_dir), weights_dir=str(wdir))
    first = train(TrainConfig(steps=2, export=False, **base))
    assert first.steps == 2 and (run / "ckpt" / "checkpoint").is_file()
    second = train(TrainConfig(steps=4, **base))  # resumes at step 2, does 2 more
    assert second.steps == 4 and np.isfinite(second.val_psnr_y)
    h5 = list(wdir.glob("espcn_x2-*.h5"))
    assert len(h5) == 1
    models.verify_weights(h5[0])
    recipe = json.loads((wdir / "espcn_x2.json").read_text())
    assert recipe["weights"] == h5[0].name and recipe["steps"] == 4
    assert recipe["stages"][-1]["to_step"] == 4 and recipe["command"].startswith("python tools/train.py")
    assert models.build("espcn", 2, weights=h5[0]).count_params() > 0


def test_init_from_another_scale_loads_the_body_only(tmp_path):
    from deploy.training.trainer import init_body_from
    x3 = models.build("xlsr", 3)
    path = tmp_path / "x3.h5"
    x3.save_weights(str(path))
    x4 = models.build("xlsr", 4)
    loaded = init_body_from(x4, str(path))
    assert "head_g0" in loaded and "tail" not in loaded  # tail: 27 vs 48 output channels
    np.testing.assert_array_equal(x4.get_layer("fuse").get_weights()[0], x3.get_layer("fuse").get_weights()[0])


def test_stages_record_extensions_but_merge_plain_resumes(tmp_path):
    from deploy.training.trainer import record_stage
    a, b = "python tools/train.py --steps 4000", "python tools/train.py --steps 8000"
    record_stage(tmp_path, a, 0, 4000)
    record_stage(tmp_path, a, 2000, 4000)  # interrupted and resumed with the same command
    stages = record_stage(tmp_path, b, 4000, 8000)  # extended: a warm restart
    assert [(s["command"], s["from_step"], s["to_step"]) for s in stages] == [(a, 0, 4000), (b, 4000, 8000)]
    assert json.loads((tmp_path / "stages.json").read_text()) == stages


def test_stages_of_a_run_dir_from_before_they_were_recorded(tmp_path):
    from deploy.training.trainer import record_stage
    stages = record_stage(tmp_path, "python tools/train.py --steps 9", 5, 9)
    assert [(s["from_step"], s["to_step"]) for s in stages] == [(0, 9)]
