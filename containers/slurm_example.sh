#!/bin/bash
# Example SLURM job: the porosity × modulus sweep in one allocation, from the
# Apptainer image (hybrid MPI model) or from a venv. Submit from the repository root:
#
#   sbatch containers/slurm_example.sh                       # Apptainer image ./scaffoldfem.sif
#   SCAFFOLDFEM_VENV=$PWD/.venv sbatch containers/slurm_example.sh     # venv instead
#
# 16 cases, 2 ranks per case, 8 groups → 16 tasks; resubmitting resumes the sweep.
# `scaffoldfem sweep SWEEP.toml --slurm --out DIR` writes scripts like this one
# (and a job-array variant) for any sweep.
#SBATCH --job-name=porosity_modulus
#SBATCH --ntasks=16
#SBATCH --cpus-per-task=1
#SBATCH --time=01:00:00
#SBATCH --output=%x-%j.out
# SIGTERM 2 minutes before the time limit: the running cases write a checkpoint.
#SBATCH --signal=TERM@120
##SBATCH --partition=CHANGE_ME
##SBATCH --account=CHANGE_ME
set -euo pipefail

SWEEP=studies/porosity_modulus.toml
OUT=runs/porosity_modulus
RANKS_PER_CASE=2
IMAGE=${SCAFFOLDFEM_SIF:-$PWD/scaffoldfem.sif}

# One thread per rank; JIT (FFCx) and mesh caches on a shared file system so that
# every node reuses forms compiled and meshes built by the others.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
export XDG_CACHE_HOME=${XDG_CACHE_HOME:-$HOME/.cache}
export SCAFFOLDFEM_MESH_CACHE=${SCAFFOLDFEM_MESH_CACHE:-$XDG_CACHE_HOME/scaffoldfem/meshes}

if [ -n "${SCAFFOLDFEM_VENV:-}" ]; then
  # venv (pip route): its MPI launches the ranks inside the allocation.
  "$SCAFFOLDFEM_VENV/bin/mpiexec" -n "$SLURM_NTASKS" \
    "$SCAFFOLDFEM_VENV/bin/scaffoldfem" sweep "$SWEEP" --out "$OUT" --ranks-per-case "$RANKS_PER_CASE"
else
  # Hybrid model: the host launcher starts one container per rank. The image's
  # MPICH must be ABI compatible with the host MPI (MPICH, Intel MPI, Cray MPICH,
  # MVAPICH2); use the PMI your site's srun offers to MPICH (pmi2 or pmix).
  srun --mpi=pmi2 -n "$SLURM_NTASKS" \
    apptainer exec --bind "$PWD" "$IMAGE" \
    scaffoldfem sweep "$SWEEP" --out "$OUT" --ranks-per-case "$RANKS_PER_CASE"
fi

# Figures (one rank): heatmaps of the headline metrics, best/worst montage.
if [ -n "${SCAFFOLDFEM_VENV:-}" ]; then
  "$SCAFFOLDFEM_VENV/bin/scaffoldfem" plot "$OUT"
else
  apptainer exec --bind "$PWD" "$IMAGE" scaffoldfem plot "$OUT"
fi
