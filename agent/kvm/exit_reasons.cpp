#include "kvm/exit_reasons.h"

#include <fmt/core.h>

#include <array>
#include <string_view>
#include <utility>

#include "hvtel/abi.h"

namespace hvtel::kvm {
namespace {

// asm/vmx.h basic exit reasons.
constexpr std::pair<uint32_t, std::string_view> kVmx[] = {
    {0, "exception_nmi"}, {1, "external_interrupt"}, {2, "triple_fault"}, {3, "init_signal"},
    {4, "sipi_signal"}, {7, "interrupt_window"}, {8, "nmi_window"}, {9, "task_switch"},
    {10, "cpuid"}, {12, "hlt"}, {13, "invd"}, {14, "invlpg"}, {15, "rdpmc"}, {16, "rdtsc"},
    {18, "vmcall"}, {19, "vmclear"}, {20, "vmlaunch"}, {21, "vmptrld"}, {22, "vmptrst"},
    {23, "vmread"}, {24, "vmresume"}, {25, "vmwrite"}, {26, "vmoff"}, {27, "vmon"},
    {28, "cr_access"}, {29, "dr_access"}, {30, "io_instruction"}, {31, "msr_read"},
    {32, "msr_write"}, {33, "invalid_state"}, {34, "msr_load_fail"}, {36, "mwait_instruction"},
    {37, "monitor_trap_flag"}, {39, "monitor_instruction"}, {40, "pause_instruction"},
    {41, "mce_during_vmentry"}, {43, "tpr_below_threshold"}, {44, "apic_access"},
    {45, "eoi_induced"}, {46, "gdtr_idtr"}, {47, "ldtr_tr"}, {48, "ept_violation"},
    {49, "ept_misconfig"}, {50, "invept"}, {51, "rdtscp"}, {52, "preemption_timer"},
    {53, "invvpid"}, {54, "wbinvd"}, {55, "xsetbv"}, {56, "apic_write"}, {57, "rdrand"},
    {58, "invpcid"}, {59, "vmfunc"}, {60, "encls"}, {61, "rdseed"}, {62, "pml_full"},
    {63, "xsaves"}, {64, "xrstors"}, {67, "umwait"}, {68, "tpause"}, {74, "bus_lock"},
    {75, "notify"}, {77, "tdcall"}, {84, "msr_read_imm"}, {85, "msr_write_imm"},
};

// asm/svm.h exit codes (raw code, not the compact index).
constexpr std::pair<uint32_t, std::string_view> kSvm[] = {
    {0x000, "read_cr0"}, {0x002, "read_cr2"}, {0x003, "read_cr3"}, {0x004, "read_cr4"},
    {0x008, "read_cr8"}, {0x010, "write_cr0"}, {0x012, "write_cr2"}, {0x013, "write_cr3"},
    {0x014, "write_cr4"}, {0x018, "write_cr8"}, {0x020, "read_dr0"}, {0x021, "read_dr1"},
    {0x022, "read_dr2"}, {0x023, "read_dr3"}, {0x024, "read_dr4"}, {0x025, "read_dr5"},
    {0x026, "read_dr6"}, {0x027, "read_dr7"}, {0x030, "write_dr0"}, {0x031, "write_dr1"},
    {0x032, "write_dr2"}, {0x033, "write_dr3"}, {0x034, "write_dr4"}, {0x035, "write_dr5"},
    {0x036, "write_dr6"}, {0x037, "write_dr7"}, {0x040, "excp_de"}, {0x041, "excp_db"},
    {0x043, "excp_bp"}, {0x044, "excp_of"}, {0x045, "excp_br"}, {0x046, "excp_ud"},
    {0x047, "excp_nm"}, {0x048, "excp_df"}, {0x04a, "excp_ts"}, {0x04b, "excp_np"},
    {0x04c, "excp_ss"}, {0x04d, "excp_gp"}, {0x04e, "excp_pf"}, {0x050, "excp_mf"},
    {0x051, "excp_ac"}, {0x052, "excp_mc"}, {0x053, "excp_xf"}, {0x060, "intr"},
    {0x061, "nmi"}, {0x062, "smi"}, {0x063, "init"}, {0x064, "vintr"},
    {0x065, "cr0_sel_write"}, {0x066, "idtr_read"}, {0x067, "gdtr_read"}, {0x068, "ldtr_read"},
    {0x069, "tr_read"}, {0x06a, "idtr_write"}, {0x06b, "gdtr_write"}, {0x06c, "ldtr_write"},
    {0x06d, "tr_write"}, {0x06e, "rdtsc"}, {0x06f, "rdpmc"}, {0x070, "pushf"}, {0x071, "popf"},
    {0x072, "cpuid"}, {0x073, "rsm"}, {0x074, "iret"}, {0x075, "swint"}, {0x076, "invd"},
    {0x077, "pause"}, {0x078, "hlt"}, {0x079, "invlpg"}, {0x07a, "invlpga"}, {0x07b, "ioio"},
    {0x07c, "msr"}, {0x07d, "task_switch"}, {0x07e, "ferr_freeze"}, {0x07f, "shutdown"},
    {0x080, "vmrun"}, {0x081, "vmmcall"}, {0x082, "vmload"}, {0x083, "vmsave"}, {0x084, "stgi"},
    {0x085, "clgi"}, {0x086, "skinit"}, {0x087, "rdtscp"}, {0x088, "icebp"}, {0x089, "wbinvd"},
    {0x08a, "monitor"}, {0x08b, "mwait"}, {0x08c, "mwait_cond"}, {0x08d, "xsetbv"},
    {0x08e, "rdpru"}, {0x08f, "efer_write_trap"}, {0x090, "cr0_write_trap"},
    {0x094, "cr4_write_trap"}, {0x098, "cr8_write_trap"}, {0x0a0, "invlpgb"},
    {0x0a1, "invlpgb_illegal"}, {0x0a2, "invpcid"}, {0x0a3, "mcommit"}, {0x0a4, "tlbsync"},
    {0x0a5, "buslock"}, {0x0a6, "idle_hlt"}, {0x400, "npf"}, {0x401, "avic_incomplete_ipi"},
    {0x402, "avic_unaccelerated_access"}, {0x403, "vmgexit"},
};

// linux/kvm.h KVM_EXIT_*.
constexpr std::string_view kUser[] = {
    "unknown", "exception", "io", "hypercall", "debug", "hlt", "mmio", "irq_window_open",
    "shutdown", "fail_entry", "intr", "set_tpr", "tpr_access", "s390_sieic", "s390_reset",
    "dcr", "nmi", "internal_error", "osi", "papr_hcall", "s390_ucontrol", "watchdog",
    "s390_tsch", "epr", "system_event", "s390_stsi", "ioapic_eoi", "hyperv", "arm_nisv",
    "x86_rdmsr", "x86_wrmsr", "dirty_ring_full", "ap_reset_hold", "x86_bus_lock", "xen",
    "riscv_sbi", "riscv_csr", "notify", "loongarch_iocsr", "memory_fault", "tdx",
};

template <size_t N>
const std::string_view* find(const std::pair<uint32_t, std::string_view> (&table)[N],
                             uint32_t code) {
  for (const auto& [c, n] : table)
    if (c == code) return &n;
  return nullptr;
}

}  // namespace

std::string exit_reason_name(uint32_t vendor, uint32_t index) {
  if (index == HV_REASON_OTHER) return "other";
  switch (vendor) {
    case HV_VENDOR_VMX:
      if (index == HV_REASON_ERR) return "failed_vmentry";
      if (auto* n = find(kVmx, index)) return std::string(*n);
      return fmt::format("vmx_{}", index);
    case HV_VENDOR_SVM: {
      if (index == HV_REASON_ERR) return "err";
      uint32_t code = index < 0xe0 ? index : 0x400 + (index - 0xe0);
      if (auto* n = find(kSvm, code)) return std::string(*n);
      return fmt::format("svm_{:#x}", code);
    }
    case HV_VENDOR_PVM:
      return fmt::format("pvm_{:#x}", index);
    default:
      return fmt::format("reason_{}", index);
  }
}

std::string userspace_exit_name(uint32_t reason) {
  if (reason == HV_USER_EXIT_OTHER) return "other";
  if (reason == HV_USER_EXIT_ERROR) return "error";  // KVM_RUN failed (not EINTR)
  if (reason < std::size(kUser)) return std::string(kUser[reason]);
  return fmt::format("kvm_exit_{}", reason);
}

const char* exit_class_name(uint32_t cls) {
  switch (cls) {
    case HV_CLASS_HALT: return "halt";
    case HV_CLASS_IO: return "io";
    case HV_CLASS_MMIO: return "mmio";
    default: return "other";
  }
}

const char* vendor_name(uint32_t vendor) {
  switch (vendor) {
    case HV_VENDOR_VMX: return "vmx";
    case HV_VENDOR_SVM: return "svm";
    case HV_VENDOR_PVM: return "pvm";
    default: return "unknown";
  }
}

}  // namespace hvtel::kvm
