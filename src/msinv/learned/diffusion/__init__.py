"""EDM diffusion: noise schedule, preconditioning, weighted loss, EMA and the reverse-SDE sampler."""
