//! `unmask bench --kernels compile`: what the GPU's own compiler makes of each kernel, one JSON
//! line each — registers, spills, scratch ("local") memory, code size, waves — as the Vulkan
//! driver reports them (`VK_KHR_pipeline_executable_properties`). Each kernel is assembled as
//! the host assembles it and translated to SPIR-V by naga with the options wgpu's Vulkan backend
//! uses for the engine (loop bounding off and index clamps on, unless `UNMASK_LOOP_BOUNDING` /
//! `UNMASK_BOUNDS_CHECKS` say otherwise),
//! then compiled on a Vulkan device opened directly (ash), not through wgpu: no GPU time, no
//! buffers. Mesa's RADV compiles for AMD GPUs that are not there
//! (`RADV_FORCE_FAMILY=navi21`), which is how the tests read the kernels' register use here.

use std::ffi::CStr;
use unmask::gpu::kernels::{pipeline_constants, AttnLayout, Kernel, KernelVariant, KvType};
use unmask::gpu::probe::Probe;
use unmask::model::DType;
use unmask::{Error, Result};
use wgpu::naga;

const FORMATS: [DType; 7] = [DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4K, DType::Q6K];

/// The kernels GPUs run (the tiled layout, every weight format; both register tiles; the
/// cooperative-matrix ones, also with f16 inputs and in every tile) and the other attention
/// layouts: (kernel, the wider tile: the 8×8 register tile, or 64×128 cooperative tiles).
fn catalogue() -> Vec<(Kernel, bool)> {
    use Kernel as K;
    let q = DType::Q4_0;
    let (f32_, f16_) = (KvType::F32, KvType::F16);
    let wg = unmask::gpu::kernel_specs::GPU_ROW_WORKGROUP;
    let mut v = Vec::new();
    for d in FORMATS {
        v.push((K::Matmul { dtype: d, variant: KernelVariant::Tiled, short: false, x: f32_, x4: false, w4: false, xw: false }, false));
        v.push((K::MatmulCoop { dtype: d, x: f32_, short: false }, false));
    }
    v.push((K::MatmulCoop { dtype: q, x: f16_, short: false }, false));
    v.push((K::MatmulCoop { dtype: q, x: f16_, short: true }, false));
    // (The cooperative ones' wider tile, 64×128: `Gpu::set_coop_tile`.)
    v.push((K::MatmulCoop { dtype: q, x: f16_, short: false }, true));
    v.push((K::MatmulQkv { dtypes: [q, q, DType::Q6K], short: false, kv: f16_, coop: true, x: f16_ }, true));
    v.push((K::MatmulGlu { dtypes: [q, q], short: false, coop: true, x: f16_, out: f16_ }, true));
    v.push((K::Matmul { dtype: q, variant: KernelVariant::Tiled, short: true, x: f32_, x4: false, w4: false, xw: false }, false));
    v.push((K::Matmul { dtype: q, variant: KernelVariant::Tiled, short: false, x: f32_, x4: false, w4: false, xw: false }, true));
    for coop in [false, true] {
        for kv in [KvType::F32, KvType::F16] {
            v.push((K::MatmulQkv { dtypes: [q, q, DType::Q6K], short: false, kv, coop, x: f32_ }, false));
        }
        v.push((K::MatmulGlu { dtypes: [q, q], short: false, coop, x: f32_, out: f32_ }, false));
    }
    v.push((K::MatmulQkv { dtypes: [q, q, DType::Q6K], short: false, kv: f16_, coop: true, x: f16_ }, false));
    v.push((K::MatmulGlu { dtypes: [q, q], short: false, coop: true, x: f16_, out: f16_ }, false));
    v.push((K::MatmulQkv { dtypes: [q, q, DType::Q6K], short: true, kv: f16_, coop: true, x: f16_ }, false));
    v.push((K::MatmulGlu { dtypes: [q, q], short: true, coop: true, x: f16_, out: f16_ }, false));
    v.push((K::MatmulGlu { dtypes: [q, q], short: true, coop: false, x: f32_, out: f32_ }, false));
    for layout in [AttnLayout::Tiles, AttnLayout::Flash, AttnLayout::Portable] {
        for kv in [KvType::F32, KvType::F16] {
            for (wide, split) in [(false, false), (false, true), (true, false)] {
                let fits = !(layout == AttnLayout::Tiles && wide || layout == AttnLayout::Portable && split);
                if fits {
                    v.push((K::Attention { layout, wide, split, kv, out: f32_ }, false));
                }
            }
        }
    }
    v.push((K::Attention { layout: AttnLayout::Tiles, wide: false, split: false, kv: f16_, out: f16_ }, false));
    for out in [KvType::F32, KvType::F16] {
        v.push((K::MatmulMerge { out }, false));
        v.push((K::MatmulMergeQkv { kv: out }, false));
    }
    for (v_, store) in [(false, false), (true, false), (true, true)] {
        v.push((K::HeadPass { v: v_, store }, false));
    }
    for tile in [8, 16, 32, 64] {
        v.push((K::MoeMatmul { dtype: q, tile, x4: false, w4: false }, false));
    }
    v.push((K::MoeMatmulCoop { dtype: q }, false));
    let rest = [
        K::Embed(q),
        K::RmsNorm { out: f32_, wg },
        K::RmsNorm { out: f16_, wg },
        K::Rope,
        K::CfgMix,
        K::KvStore,
        K::AttentionMerge { out: f32_ },
        K::AttentionMerge { out: f16_ },
        K::Select(wg),
        K::Bias,
        K::MoeRoute,
        K::MoeCombine,
    ];
    v.extend(rest.into_iter().map(|k| (k, false)));
    let dgemma = [K::SoftCap, K::Softmax(wg), K::SoftEmbed(q), K::DgChoose];
    v.extend(dgemma.into_iter().map(|k| (k, false)));
    v.extend([Probe::Read, Probe::Shared, Probe::Fma, Probe::Coop].map(|p| (K::Probe(p), false)));
    v
}

/// What the device can compile: SPIR-V version, f16 arithmetic, cooperative matrices, subgroup
/// size, robust buffer access 2 (wgpu then leaves buffer indices unclamped).
struct Device {
    name: String,
    driver: String,
    spirv: (u8, u8),
    f16: bool,
    coop: bool,
    lanes: u32,
    robust2: bool,
    /// naga's index clamps (`UNMASK_BOUNDS_CHECKS`) and loop bounding (`UNMASK_LOOP_BOUNDING`),
    /// as the engine would compile.
    checks: bool,
    loop_bounding: bool,
}

/// A kernel's buffers: (binding, is a uniform buffer), all in group 0.
type Buffers = Vec<(u32, bool)>;

/// Kernel `k`'s SPIR-V (from its source `src`) as wgpu's Vulkan backend writes it for the
/// engine on `dev`, and its buffers.
fn spirv(k: Kernel, wide: bool, src: &str, dev: &Device) -> std::result::Result<(Vec<u32>, Buffers), String> {
    use naga::valid::Capabilities as Caps;
    let module = naga::front::wgsl::parse_str(src).map_err(|e| e.emit_to_string(src))?;
    let caps = Caps::COOPERATIVE_MATRIX | Caps::SHADER_FLOAT16 | Caps::SHADER_FLOAT16_IN_FLOAT32 | Caps::SUBGROUP;
    let info = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), caps)
        .subgroup_stages(naga::valid::ShaderStages::COMPUTE)
        .subgroup_operations(naga::valid::SubgroupOperationSet::all())
        .validate(&module)
        .map_err(|e| e.emit_to_string(src))?;
    let constants: naga::back::PipelineConstants = pipeline_constants(k, dev.lanes, 0, wide).into_iter().map(|(n, x)| (n.to_string(), x)).collect();
    let stage = Some((naga::ShaderStage::Compute, "main"));
    let (module, info) = naga::back::pipeline_constants::process_overrides(&module, &info, stage, &constants).map_err(|e| e.to_string())?;
    use naga::proc::BoundsCheckPolicy as Policy;
    let checks = dev.checks;
    let index = if checks { Policy::Restrict } else { Policy::Unchecked };
    let buffer = if checks && !dev.robust2 { Policy::Restrict } else { Policy::Unchecked };
    let opts = naga::back::spv::Options {
        lang_version: dev.spirv,
        bounds_check_policies: naga::proc::BoundsCheckPolicies { index, buffer, image_load: buffer, binding_array: Policy::Unchecked },
        zero_initialize_workgroup_memory: naga::back::spv::ZeroInitializeWorkgroupMemoryMode::Native,
        force_loop_bounding: dev.loop_bounding,
        ..Default::default()
    };
    let pipeline = naga::back::spv::PipelineOptions { shader_stage: naga::ShaderStage::Compute, entry_point: "main".into() };
    let words = naga::back::spv::write_vec(&module, &info, &opts, Some(&pipeline)).map_err(|e| e.to_string())?;
    let buffers = module.global_variables.iter().filter_map(|(_, g)| g.binding.map(|b| (b.binding, g.space == naga::AddressSpace::Uniform))).collect();
    Ok((words, buffers))
}

pub fn bench_compile() -> Result<()> {
    let checks = super::model::on_off("UNMASK_BOUNDS_CHECKS")?.unwrap_or(true);
    let loop_bounding = super::model::on_off("UNMASK_LOOP_BOUNDING")?.unwrap_or(false);
    // SAFETY: the Vulkan calls below follow the specification's valid usage: a 1.3 instance,
    // features queried before enabling them, objects destroyed before their device.
    unsafe { run(checks, loop_bounding) }
}

unsafe fn run(checks: bool, loop_bounding: bool) -> Result<()> {
    use ash::vk;
    let entry = ash::Entry::load().map_err(|e| Error::Gpu(format!("--kernels compile needs a Vulkan loader (libvulkan.so.1): {e}")))?;
    let app = vk::ApplicationInfo::default().api_version(vk::make_api_version(0, 1, 3, 0));
    let inst = entry.create_instance(&vk::InstanceCreateInfo::default().application_info(&app), None).map_err(|e| {
        let hint = if e == vk::Result::ERROR_INCOMPATIBLE_DRIVER { ": no Vulkan driver found (install your GPU's, or Mesa's mesa-vulkan-drivers)" } else { "" };
        Error::Gpu(format!("--kernels compile: creating a Vulkan instance failed ({e:?}){hint}"))
    })?;
    let result = compile_all(&inst, checks, loop_bounding);
    inst.destroy_instance(None);
    result
}

unsafe fn compile_all(inst: &ash::Instance, checks: bool, loop_bounding: bool) -> Result<()> {
    use ash::vk;
    let fail = |what: &str, e: vk::Result| Error::Gpu(format!("--kernels compile: {what} failed ({e:?})"));
    // The device wgpu would prefer: a discrete GPU, else an integrated one, else the first.
    let devices = inst.enumerate_physical_devices().map_err(|e| fail("listing Vulkan devices", e))?;
    let rank = |pd: &vk::PhysicalDevice| match inst.get_physical_device_properties(*pd).device_type {
        vk::PhysicalDeviceType::DISCRETE_GPU => 0,
        vk::PhysicalDeviceType::INTEGRATED_GPU => 1,
        _ => 2,
    };
    let pd = *devices.iter().min_by_key(|pd| rank(pd)).ok_or_else(|| Error::Gpu("--kernels compile: no Vulkan device".into()))?;
    let props = inst.get_physical_device_properties(pd);
    let name = CStr::from_ptr(props.device_name.as_ptr()).to_string_lossy().into_owned();
    let exts: Vec<String> = inst
        .enumerate_device_extension_properties(pd)
        .map_err(|e| fail("listing device extensions", e))?
        .iter()
        .map(|e| CStr::from_ptr(e.extension_name.as_ptr()).to_string_lossy().into_owned())
        .collect();
    let has = |e: &str| exts.iter().any(|x| x == e);
    if !has("VK_KHR_pipeline_executable_properties") {
        return Err(Error::Gpu(format!(
            "--kernels compile: the Vulkan driver of {name} does not report what it compiled (no VK_KHR_pipeline_executable_properties); \
             Mesa's RADV compiles for an AMD GPU without one: RADV_FORCE_FAMILY=navi21 VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/radeon_icd.x86_64.json"
        )));
    }
    let coop_ext = has("VK_KHR_cooperative_matrix");
    let robust2 = has("VK_EXT_robustness2");
    let mut want = vec![c"VK_KHR_pipeline_executable_properties".as_ptr()];
    if coop_ext {
        want.push(c"VK_KHR_cooperative_matrix".as_ptr());
    }
    if robust2 {
        want.push(c"VK_EXT_robustness2".as_ptr());
    }
    // What the kernels need of it.
    let (f16, has_coop, has_robust2) = {
        let mut f12 = vk::PhysicalDeviceVulkan12Features::default();
        let mut coop = vk::PhysicalDeviceCooperativeMatrixFeaturesKHR::default();
        let mut rob2 = vk::PhysicalDeviceRobustness2FeaturesEXT::default();
        let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut f12);
        if coop_ext {
            f2 = f2.push_next(&mut coop);
        }
        if robust2 {
            f2 = f2.push_next(&mut rob2);
        }
        inst.get_physical_device_features2(pd, &mut f2);
        (f12.shader_float16 == vk::TRUE, coop.cooperative_matrix == vk::TRUE, rob2.robust_buffer_access2 == vk::TRUE)
    };
    // Every feature the device has, on (what wgpu would enable, and more: compiling needs no
    // care for their cost).
    let mut f11 = vk::PhysicalDeviceVulkan11Features::default();
    let mut f12 = vk::PhysicalDeviceVulkan12Features::default();
    let mut f13 = vk::PhysicalDeviceVulkan13Features::default();
    let mut exec = vk::PhysicalDevicePipelineExecutablePropertiesFeaturesKHR::default();
    let mut coop = vk::PhysicalDeviceCooperativeMatrixFeaturesKHR::default();
    let mut rob2 = vk::PhysicalDeviceRobustness2FeaturesEXT::default();
    let mut f2 = vk::PhysicalDeviceFeatures2::default().push_next(&mut f11).push_next(&mut f12).push_next(&mut f13).push_next(&mut exec);
    if coop_ext {
        f2 = f2.push_next(&mut coop);
    }
    if robust2 {
        f2 = f2.push_next(&mut rob2);
    }
    inst.get_physical_device_features2(pd, &mut f2);
    let mut sub = vk::PhysicalDeviceSubgroupProperties::default();
    let mut driver = vk::PhysicalDeviceDriverProperties::default();
    let mut p2 = vk::PhysicalDeviceProperties2::default().push_next(&mut sub).push_next(&mut driver);
    inst.get_physical_device_properties2(pd, &mut p2);
    let dev = Device {
        name,
        driver: format!("{} {}", CStr::from_ptr(driver.driver_name.as_ptr()).to_string_lossy(), CStr::from_ptr(driver.driver_info.as_ptr()).to_string_lossy()),
        spirv: if props.api_version >= vk::API_VERSION_1_3 { (1, 6) } else { (1, 5) },
        f16,
        coop: has_coop,
        lanes: sub.subgroup_size,
        robust2: has_robust2,
        checks,
        loop_bounding,
    };
    let prio = [1.0f32];
    let queues = [vk::DeviceQueueCreateInfo::default().queue_family_index(0).queue_priorities(&prio)];
    let info = vk::DeviceCreateInfo::default().queue_create_infos(&queues).enabled_extension_names(&want).push_next(&mut f2);
    let device = inst.create_device(pd, &info, None).map_err(|e| fail(&format!("opening {}", dev.name), e))?;
    let stats = ash::khr::pipeline_executable_properties::Device::new(inst, &device);
    for (k, wide) in catalogue() {
        let line = compile_one(&device, &stats, &dev, k, wide);
        // ("register_tile" 8: the wider tile of either core; "coop_tile": a cooperative one's.)
        let coop_tile = k.is_coop().then(|| {
            let (r, c) = unmask::gpu::kernel_source::coop_tile(unmask::gpu::kernel_source::coop_short(k), wide);
            format!("{r}x{c}")
        });
        println!(
            "{}",
            serde_json::json!({"kernel": format!("{k:?}"), "register_tile": if wide { 8 } else { 4 }, "coop_tile": coop_tile, "device": dev.name, "driver": dev.driver, "subgroup_size": dev.lanes, "compiled": line})
        );
    }
    device.destroy_device(None);
    Ok(())
}

/// One kernel's statistics as the driver names them, or why it was not compiled.
unsafe fn compile_one(
    device: &ash::Device,
    stats: &ash::khr::pipeline_executable_properties::Device,
    dev: &Device,
    k: Kernel,
    wide: bool,
) -> serde_json::Value {
    use ash::vk;
    // (Cooperative kernels: for four subgroups of the device's size, the pipeline's WG too.)
    let src = unmask::gpu::kernel_source::source_for(k, wide, dev.lanes);
    if k.is_coop() && !dev.coop {
        return serde_json::json!({"skipped": "the device has no cooperative matrices"});
    }
    if src.contains("enable f16;") && !dev.f16 {
        return serde_json::json!({"skipped": "the device has no shader-f16"});
    }
    let (words, buffers) = match spirv(k, wide, &src, dev) {
        Ok(w) => w,
        Err(e) => return serde_json::json!({"error": format!("naga: {e}")}),
    };
    let Ok(module) = device.create_shader_module(&vk::ShaderModuleCreateInfo::default().code(&words), None) else {
        return serde_json::json!({"error": "the driver refused the SPIR-V"});
    };
    let layout_bindings: Vec<vk::DescriptorSetLayoutBinding> = buffers
        .into_iter()
        .map(|(b, uniform)| {
            let ty = if uniform { vk::DescriptorType::UNIFORM_BUFFER } else { vk::DescriptorType::STORAGE_BUFFER };
            vk::DescriptorSetLayoutBinding::default().binding(b).descriptor_type(ty).descriptor_count(1).stage_flags(vk::ShaderStageFlags::COMPUTE)
        })
        .collect();
    let set = device.create_descriptor_set_layout(&vk::DescriptorSetLayoutCreateInfo::default().bindings(&layout_bindings), None);
    let Ok(set) = set else {
        device.destroy_shader_module(module, None);
        return serde_json::json!({"error": "descriptor set layout refused"});
    };
    let sets = [set];
    let value = match device.create_pipeline_layout(&vk::PipelineLayoutCreateInfo::default().set_layouts(&sets), None) {
        Err(e) => serde_json::json!({"error": format!("pipeline layout refused ({e:?})")}),
        Ok(layout) => {
            let stage = vk::PipelineShaderStageCreateInfo::default().stage(vk::ShaderStageFlags::COMPUTE).module(module).name(c"main");
            let ci = [vk::ComputePipelineCreateInfo::default().stage(stage).layout(layout).flags(vk::PipelineCreateFlags::CAPTURE_STATISTICS_KHR)];
            let v = match device.create_compute_pipelines(vk::PipelineCache::null(), &ci, None) {
                Err((_, e)) => serde_json::json!({"error": format!("the driver failed to compile it ({e:?})")}),
                Ok(p) => {
                    let v = statistics(stats, p[0]);
                    p.into_iter().for_each(|p| device.destroy_pipeline(p, None));
                    v
                }
            };
            device.destroy_pipeline_layout(layout, None);
            v
        }
    };
    device.destroy_descriptor_set_layout(set, None);
    device.destroy_shader_module(module, None);
    value
}

/// A compiled pipeline's statistics, by the driver's names.
unsafe fn statistics(stats: &ash::khr::pipeline_executable_properties::Device, pipeline: ash::vk::Pipeline) -> serde_json::Value {
    use ash::vk::{PipelineExecutableInfoKHR, PipelineExecutableStatisticFormatKHR as F, TRUE};
    let list = match stats.get_pipeline_executable_statistics(&PipelineExecutableInfoKHR::default().pipeline(pipeline).executable_index(0)) {
        Ok(list) => list,
        Err(e) => return serde_json::json!({"error": format!("no statistics ({e:?})")}),
    };
    let value = |s: &ash::vk::PipelineExecutableStatisticKHR| -> serde_json::Value {
        match s.format {
            F::BOOL32 => (s.value.b32 == TRUE).into(),
            F::INT64 => s.value.i64.into(),
            F::UINT64 => s.value.u64.into(),
            _ => s.value.f64.into(),
        }
    };
    list.iter().map(|s| (CStr::from_ptr(s.name.as_ptr()).to_string_lossy().into_owned(), value(s))).collect::<serde_json::Map<_, _>>().into()
}
