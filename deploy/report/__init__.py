"""Deployment report: quality, policy, search, latency and visual crops of one model, as index.md + PNGs.

  gather (deploy/report/gather.py)   model source -> inputs/ (converted models, evaluate JSONs,
                                     crops, the user's search and harness files, manifest)
  load   (deploy/report/inputs.py)   inputs/ -> validated Inputs + one line per skipped input
  render (deploy/report/render.py)   Inputs -> figures.py / crops.py PNGs + markdown.py index.md

Entry points: deploy.report.build (build, render_only, inspect) and deploy.report.gather.GatherOptions.
Nothing is imported here, so `--inspect` does not load TensorFlow.
"""
