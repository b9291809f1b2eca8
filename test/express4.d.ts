// `express4` is an npm alias of express@4 (a devDependency) so one suite can mount the balancer in
// Express 4 and 5; the parts used here are typed the same in both.
declare module 'express4' {
  import express from 'express';
  export default express;
}
