/** Packaging targets: registry.json, Dockerfile templates, build, build-all and verify. */
export * from "./add.js";
export * from "./blueprint.js";
export * from "./build.js";
export * from "./build-all.js";
export * from "./init.js";
export * from "./list.js";
export {
  formatProblems,
  loadRegistry,
  parseRegistryText,
  type RegistryProblem,
  readRegistry,
  saveRegistry,
} from "./registry.js";
export * from "./remove.js";
export * from "./schema.js";
export {
  findPlaceholders,
  renderTemplate,
  TEMPLATE_NAMES,
  type TemplateName,
  type TemplateValues,
  templatesDir,
} from "./templates.js";
export * from "./verify.js";
