"""Triton kernels of :mod:`sleuth.kernels.triton_gate` (imported only on first use, since it needs
triton; the helper ``_bounds`` must be a module global for ``@triton.jit`` to find it)."""

import triton
import triton.language as tl


@triton.jit
def _bounds(q, KMIN, KMAX, kmn_base, i0, NK, s_kn, D, scale,
            K_T: tl.constexpr, D_PAD: tl.constexpr, PRECISION: tl.constexpr):
    offs_i = i0 + tl.arange(0, K_T)
    offs_d = tl.arange(0, D_PAD)
    ok = (offs_i[:, None] < NK) & (offs_d[None, :] < D)
    ptr = kmn_base + offs_i[:, None] * s_kn + offs_d[None, :]
    kmax = tl.load(KMAX + ptr, mask=ok, other=0.0)
    kmin = tl.load(KMIN + ptr, mask=ok, other=0.0)
    # relu(q) and min(q, 0) are exact in q's dtype; tl.maximum would compute bfloat16 in float32
    # and tl.dot wants both operands in one dtype
    qp = tl.where(q > 0, q, tl.zeros_like(q)).to(kmax.dtype)
    qn = tl.where(q < 0, q, tl.zeros_like(q)).to(kmax.dtype)
    ub = tl.dot(qp, tl.trans(kmax), input_precision=PRECISION)
    ub += tl.dot(qn, tl.trans(kmin), input_precision=PRECISION)
    return ub * scale, offs_i


@triton.jit
def _rows(ROWS, row_base, offs_r, s_rr, R, D, D_PAD: tl.constexpr):
    """A tile of query rows ``[len(offs_r), D_PAD]`` (zeros past ``R`` rows and ``D`` dims) and its row mask."""
    offs_d = tl.arange(0, D_PAD)
    r_ok = offs_r < R
    q = tl.load(ROWS + row_base + offs_r[:, None] * s_rr + offs_d[None, :],
                mask=r_ok[:, None] & (offs_d[None, :] < D), other=0.0)
    return q, r_ok


@triton.jit
def _row_lse(
    ROWS, KMIN, KMAX, LSE,
    scale, R, NK, D, FIRST, HKV,
    s_rb, s_rh, s_rn, s_rr,
    s_kb, s_kh, s_kn,
    s_lb, s_lh, s_ln,
    R_T: tl.constexpr, K_T: tl.constexpr, D_PAD: tl.constexpr, PRECISION: tl.constexpr,
):
    n = tl.program_id(0)
    bh = tl.program_id(1)
    rt = tl.program_id(2)
    b = bh // HKV
    h = bh % HKV
    j = FIRST + n  # absolute block of this query block: keys blocks < j are candidates
    offs_r = rt * R_T + tl.arange(0, R_T)
    q, r_ok = _rows(ROWS, b * s_rb + h * s_rh + n * s_rn, offs_r, s_rr, R, D, D_PAD)
    m_i = tl.full([R_T], float("-inf"), dtype=tl.float32)
    s_i = tl.zeros([R_T], dtype=tl.float32)
    kmn_base = b * s_kb + h * s_kh
    for i0 in range(0, NK, K_T):  # to NK, not j: a bound read from program_id would do on a GPU,
        if i0 < j:                   # but Triton's CPU interpreter (TRITON_INTERPRET=1) needs a plain one
            ub, offs_i = _bounds(q, KMIN, KMAX, kmn_base, i0, NK, s_kn, D, scale, K_T, D_PAD, PRECISION)
            ub = tl.where(offs_i[None, :] < j, ub, float("-inf"))
            m_new = tl.maximum(m_i, tl.max(ub, 1))
            s_i = s_i * tl.exp(m_i - m_new) + tl.sum(tl.exp(ub - m_new[:, None]), 1)
            m_i = m_new
    lse = m_i + tl.log(s_i)
    tl.store(LSE + b * s_lb + h * s_lh + n * s_ln + offs_r, lse, mask=r_ok)


@triton.jit
def _block_max(
    ROWS, VALID, KMIN, KMAX, LSE, OUT,
    scale, R, NK, D, FIRST, HKV,
    s_rb, s_rh, s_rn, s_rr,
    s_vn,
    s_kb, s_kh, s_kn,
    s_lb, s_lh, s_ln,
    s_ob, s_oh, s_on,
    R_T: tl.constexpr, K_T: tl.constexpr, D_PAD: tl.constexpr, PRECISION: tl.constexpr,
):
    n = tl.program_id(0)
    bh = tl.program_id(1)
    kt = tl.program_id(2)
    b = bh // HKV
    h = bh % HKV
    j = FIRST + n
    i0 = kt * K_T
    offs_i = i0 + tl.arange(0, K_T)
    best = tl.full([K_T], float("-inf"), dtype=tl.float32)
    if i0 < j:
        kmn_base = b * s_kb + h * s_kh
        for r0 in range(0, R, R_T):
            offs_r = r0 + tl.arange(0, R_T)
            q, r_ok = _rows(ROWS, b * s_rb + h * s_rh + n * s_rn, offs_r, s_rr, R, D, D_PAD)
            valid = tl.load(VALID + n * s_vn + offs_r, mask=r_ok, other=0) != 0
            lse = tl.load(LSE + b * s_lb + h * s_lh + n * s_ln + offs_r, mask=r_ok, other=0.0)
            ub, _ = _bounds(q, KMIN, KMAX, kmn_base, i0, NK, s_kn, D, scale, K_T, D_PAD, PRECISION)
            logp = tl.where(valid[:, None], ub - lse[:, None], float("-inf"))
            best = tl.maximum(best, tl.max(logp, 0))
        best = tl.where(offs_i < j, best, float("-inf"))
    tl.store(OUT + b * s_ob + h * s_oh + n * s_on + offs_i, best, mask=offs_i < NK)
