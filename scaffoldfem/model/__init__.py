"""scaffoldfem.model: the coupled model as a composition of parts.

Modules:
    discretisation: mesh, spaces, measures, regions and DG0 / owned-vector helpers.
    state: ModelState (the one description of the evolving state), the Part protocol.
    transport: TransportParams (one step's coefficients for solver and balance forms).
    material: w, φ, α history, D, E, ν.
    cells: transplanted cell density.
    enzyme: the enzymes (MMP-9, MMP-2, ...) driven by the injury timeline.
    ros: reactive oxygen species and scavengers.
    carriers: the carriers of a growth factor (release laws, affinity binding).
    exposure: region means for the exposure metrics.
    species: growth-factor transport, carriers and sources.
    balance: the mass-balance ledger.
    mechanics: elasticity and its derived fields.
    coupled: CoupledModel, the splitting step over the parts.
"""
