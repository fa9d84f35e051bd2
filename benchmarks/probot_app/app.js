// The anchor of benchmarks/bot_load.py: a Probot app that receives `issue_comment` and does nothing
// with it (stores nothing, calls nothing). Probot answers 200 once this handler has returned.
export default (app) => {
  app.on("issue_comment", async () => {});
};
