"""Diffusion maths shared by the 2D and image labs: schedules, samplers, likelihood, guidance."""
